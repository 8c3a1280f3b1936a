/**
 * What a MarketMaker keeps between ticks, persisted as one JSON row (it is small: a config, a simulator
 * state, a feed summary and counters), and the figures its status reports.
 * @internal
 */
import type { MarketConfig } from "../../shared/market/config.ts";
import type { FeedState } from "../../shared/market/feed/types.ts";
import type { PrngState } from "../../shared/market/prng.ts";
import type { QuoteLevel } from "../../shared/market/quoting.ts";
import type { SimulatorState } from "../../shared/market/simulator.ts";
import type { Migration } from "../sql.ts";

export const MAKER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "maker_state: the market maker's config, simulator and counters as one JSON row",
    up: `CREATE TABLE maker_state (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      body TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
  },
];

/**
 * - `new`: never started; the cron / first request starts it with defaults (when enabled).
 * - `running`: the alarm ticks.
 * - `stopped`: an admin stopped it; nothing starts it again but an admin.
 */
export type MakerMode = "new" | "running" | "stopped";

export interface MakerMetrics {
  ticks: number;
  /** Ticks that failed part-way (the next tick carries on). */
  failedTicks: number;
  /** Simulator steps taken (a tick after a pause takes several). */
  steps: number;
  referenceUpdates: number;
  /** Order actions sent through the maker's UserSession, and those it refused. */
  quoteActions: number;
  quoteRejects: number;
  /** Reject codes seen, with counts. */
  rejectCodes: Record<string, number>;
  takerOrders: number;
  takerRejects: number;
  /** Time from the start of a tick until the maker's quotes are in the book, ms: last, EWMA, max. */
  requoteMsLast: number;
  requoteMsAvg: number;
  requoteMsMax: number;
  /** Whole tick, ms. */
  tickMsLast: number;
  tickMsAvg: number;
  tickMsMax: number;
  /** When the counters started (ms), to turn them into rates. */
  since: number;
}

export function emptyMetrics(now: number): MakerMetrics {
  return {
    ticks: 0,
    failedTicks: 0,
    steps: 0,
    referenceUpdates: 0,
    quoteActions: 0,
    quoteRejects: 0,
    rejectCodes: {},
    takerOrders: 0,
    takerRejects: 0,
    requoteMsLast: 0,
    requoteMsAvg: 0,
    requoteMsMax: 0,
    tickMsLast: 0,
    tickMsAvg: 0,
    tickMsMax: 0,
    since: now,
  };
}

export interface MakerState {
  mode: MakerMode;
  config: MarketConfig | null;
  sim: SimulatorState | null;
  /** The noise takers' generator (separate from the price path's). */
  takerRng: PrngState | null;
  /** Reference price last sent to the book, ticks. */
  reference: number | null;
  referenceSource: "simulator" | "feed";
  /** Centre of the ladder last quoted (the requote threshold compares against it). */
  quotedCentre: number | null;
  /** The ladder last wanted. */
  ladder: { bids: QuoteLevel[]; asks: QuoteLevel[] };
  /** The maker's position at the last tick: a change says which side was hit. */
  lastPositionLots: number | null;
  bidHitAt: number;
  askHitAt: number;
  /** Bots that got their starting shares. */
  granted: string[];
  feed: FeedState | null;
  /** When the last feed message arrived (wall clock), ms. */
  feedReceivedAt: number;
  metrics: MakerMetrics;
  lastError: { at: number; message: string } | null;
  startedAt: number | null;
  stoppedAt: number | null;
}

export function initialMakerState(now: number): MakerState {
  return {
    mode: "new",
    config: null,
    sim: null,
    takerRng: null,
    reference: null,
    referenceSource: "simulator",
    quotedCentre: null,
    ladder: { bids: [], asks: [] },
    lastPositionLots: null,
    bidHitAt: 0,
    askHitAt: 0,
    granted: [],
    feed: null,
    feedReceivedAt: 0,
    metrics: emptyMetrics(now),
    lastError: null,
    startedAt: null,
    stoppedAt: null,
  };
}

/** Exponentially weighted moving average with weight 1/8 for the new sample. */
export function ewma(previous: number, sample: number, count: number): number {
  return count <= 1 ? sample : previous + (sample - previous) / 8;
}

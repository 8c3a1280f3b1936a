/**
 * Per-symbol configuration of the simulated market: the reference-price simulator, the market maker's
 * quotes, the noise takers and an optional real feed. Defaults scale with the symbol's price so that a
 * $12 and a $250 stock get books of similar notional depth.
 *
 * @example
 * ```ts
 * const config = defaultMarketConfig(findSymbol("EPIC")!, { tickMs: 1500, seed: "prepx", startMs });
 * const next = mergeMarketConfig(config, { quote: { spreadTicks: 6 } });   // or { ok: false, problem }
 * ```
 */
import { referencePriceTicks, type SymbolSpec } from "../symbols.ts";
import { checkNoiseConfig, type NoiseConfig } from "./noise.ts";
import { checkQuoteConfig, type QuoteConfig } from "./quoting.ts";
import { checkSimulatorConfig, SIMULATOR_DEFAULTS, type SimulatorConfig } from "./simulator.ts";

/** A real feed the reference price (and the maker's quotes) follow instead of the simulator. */
export interface FeedConfig {
  adapter: "coinbase";
  /** The external product, e.g. "BTC-USD". */
  product: string;
  /** External price × priceScale = PrepX price. */
  priceScale: string;
  /** External size × qtyScale = PrepX quantity. */
  qtyScale: string;
  /** WebSocket URL override (default: the adapter's public endpoint). */
  url?: string;
  /** Open the connection from the Durable Object (false: only messages pushed through the admin API). */
  connect: boolean;
  /** Older than this (ms, by arrival) the feed counts as stale and the simulator takes over again. */
  staleAfterMs: number;
}

export interface MakerPolicy {
  /** A side that was hit gets no new quantity for this long (ms): how fast depth refills. */
  refillDelayMs: number;
  /** Move resting quotes only when the centre moved at least this many ticks. */
  requoteThresholdTicks: number;
  /** Share of cash the bids may tie up and of shares the asks may offer (room for replaces). */
  budgetFraction: number;
  /** Shares granted to the maker on first start (its inventory), lots. */
  inventoryGrantLots: number;
}

export interface MarketConfig {
  symbol: string;
  /** Time between two ticks of the maker (and steps of the simulator), ms. */
  tickMs: number;
  simulator: SimulatorConfig;
  quote: QuoteConfig;
  maker: MakerPolicy;
  noise: NoiseConfig;
  feed: FeedConfig | null;
}

/** Notional of the best quote level in USD; the size in lots follows from the price. */
const LEVEL_NOTIONAL_USD = 3_000;
const MAKER_INVENTORY_USD = 60_000;
const TAKER_INVENTORY_USD = 10_000;

/** Whole lots worth about `usd` at a price of `priceTicks` (tick and lot sizes of the spec), ≥ 1. */
export function lotsWorth(
  spec: Pick<SymbolSpec, "tickSize" | "lotSize">,
  priceTicks: number,
  usd: number,
): number {
  const unit = Number(spec.tickSize) * Number(spec.lotSize);
  return Math.max(1, Math.floor(usd / (priceTicks * unit)));
}

export interface DefaultsInput {
  tickMs: number;
  /** Prefix of the simulator seed; the symbol is appended. */
  seed: string;
  /** Simulated time of step 0 (usually the first start, rounded down to a tick). */
  startMs: number;
}

export function defaultMarketConfig(spec: SymbolSpec, input: DefaultsInput): MarketConfig {
  const start = referencePriceTicks(spec);
  const level = lotsWorth(spec, start, LEVEL_NOTIONAL_USD);
  const inventory = lotsWorth(spec, start, MAKER_INVENTORY_USD);
  return {
    symbol: spec.symbol,
    tickMs: input.tickMs,
    simulator: {
      ...SIMULATOR_DEFAULTS,
      seed: `${input.seed}:${spec.symbol}`,
      startPriceTicks: start,
      startMs: input.startMs - (input.startMs % input.tickMs),
      stepMs: input.tickMs,
    },
    quote: {
      spreadTicks: 4,
      levels: 5,
      levelSpacingTicks: 2,
      levelSizeLots: level,
      sizeStepLots: Math.floor(level / 4),
      targetInventoryLots: inventory,
      skewTicksPerLevelSize: 1,
      maxSkewTicks: 5,
      maxInventoryLots: inventory * 2,
      minInventoryLots: 0,
    },
    maker: {
      refillDelayMs: 3_000,
      requoteThresholdTicks: 1,
      budgetFraction: 0.45,
      inventoryGrantLots: inventory,
    },
    noise: {
      takers: 2,
      tradeProbability: 0.3,
      minLots: 1,
      maxLots: level,
      targetInventoryLots: lotsWorth(spec, start, TAKER_INVENTORY_USD),
    },
    feed: null,
  };
}

/** The first problem of a config, or null. */
export function checkMarketConfig(c: MarketConfig): string | null {
  if (!Number.isSafeInteger(c.tickMs) || c.tickMs < 100 || c.tickMs > 3_600_000) {
    return "tickMs must be an integer from 100 to 3600000";
  }
  const sim = checkSimulatorConfig(c.simulator);
  if (sim !== null) return `simulator: ${sim}`;
  const quote = checkQuoteConfig(c.quote);
  if (quote !== null) return `quote: ${quote}`;
  const noise = checkNoiseConfig(c.noise);
  if (noise !== null) return `noise: ${noise}`;
  const m = c.maker;
  if (!Number.isSafeInteger(m.refillDelayMs) || m.refillDelayMs < 0 || m.refillDelayMs > 3_600_000) {
    return "maker: refillDelayMs must be an integer from 0 to 3600000";
  }
  if (!Number.isSafeInteger(m.requoteThresholdTicks) || m.requoteThresholdTicks < 1) {
    return "maker: requoteThresholdTicks must be an integer ≥ 1";
  }
  if (!Number.isFinite(m.budgetFraction) || m.budgetFraction <= 0 || m.budgetFraction > 1) {
    return "maker: budgetFraction must be in (0, 1]";
  }
  if (!Number.isSafeInteger(m.inventoryGrantLots) || m.inventoryGrantLots < 0) {
    return "maker: inventoryGrantLots must be a non-negative integer";
  }
  if (c.feed !== null) {
    const f = c.feed;
    if (f.adapter !== "coinbase") return "feed: adapter must be coinbase";
    if (typeof f.product !== "string" || !/^[A-Z0-9]{1,12}-[A-Z0-9]{1,12}$/.test(f.product)) {
      return "feed: product must look like BTC-USD";
    }
    if (!/^\d{1,12}(\.\d{1,12})?$/.test(f.priceScale) || !/^\d{1,12}(\.\d{1,12})?$/.test(f.qtyScale)) {
      return "feed: priceScale and qtyScale must be decimal strings";
    }
    if (f.url !== undefined && !/^wss?:\/\/[^\s]+$/.test(f.url))
      return "feed: url must be a ws:// or wss:// URL";
    if (!Number.isSafeInteger(f.staleAfterMs) || f.staleAfterMs < 1000)
      return "feed: staleAfterMs must be ≥ 1000";
  }
  return null;
}

/** A partial update, one level deep per section (`{ quote: { spreadTicks: 6 } }`). */
export interface MarketConfigPatch {
  tickMs?: number;
  simulator?: Partial<SimulatorConfig>;
  quote?: Partial<QuoteConfig>;
  maker?: Partial<MakerPolicy>;
  noise?: Partial<NoiseConfig>;
  feed?: (Partial<FeedConfig> & Pick<FeedConfig, "product">) | null;
}

/** The config with a patch applied and checked; the simulator's step follows `tickMs`. */
export function mergeMarketConfig(
  base: MarketConfig,
  patch: MarketConfigPatch,
): { ok: true; config: MarketConfig } | { ok: false; problem: string } {
  const tickMs = patch.tickMs ?? base.tickMs;
  const feed =
    patch.feed === undefined
      ? base.feed
      : patch.feed === null
        ? null
        : {
            adapter: "coinbase" as const,
            priceScale: "1",
            qtyScale: "1",
            connect: false,
            staleAfterMs: 30_000,
            ...(base.feed ?? {}),
            ...patch.feed,
          };
  const config: MarketConfig = {
    symbol: base.symbol,
    tickMs,
    simulator: { ...base.simulator, ...patch.simulator, stepMs: tickMs },
    quote: { ...base.quote, ...patch.quote },
    maker: { ...base.maker, ...patch.maker },
    noise: { ...base.noise, ...patch.noise },
    feed,
  };
  const problem = checkMarketConfig(config);
  return problem === null ? { ok: true, config } : { ok: false, problem };
}

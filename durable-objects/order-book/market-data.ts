/**
 * Server side of the market-data stream: turning engine output into wire messages, and reading client
 * frames. No Workers APIs here; the OrderBook object owns the sockets.
 * @internal
 */
import { formatSteps, parseStep, type Step } from "../../shared/decimal.ts";
import type { EventLog } from "../../shared/engine/event-log.ts";
import type { DepthSnapshot, PriceLevel, Side, SymbolRules } from "../../shared/engine/types.ts";
import {
  type ClientMessage,
  type DeltaMessage,
  type ErrorMessage,
  MAX_DEPTH,
  type SequencedMessage,
  type SnapshotMessage,
  type WireLevel,
} from "./protocol.ts";

function stepOf(size: string): Step {
  const step = parseStep(size);
  if (!step.ok) throw new RangeError(`invalid step size ${size}`);
  return step.value;
}

/** Formats one symbol's ticks and lots as wire decimals and builds its market-data messages. */
export class MarketDataFormatter {
  readonly symbol: string;
  private readonly tick: Step;
  private readonly lot: Step;

  constructor(rules: Pick<SymbolRules, "symbol" | "tickSize" | "lotSize">) {
    this.symbol = rules.symbol;
    this.tick = stepOf(rules.tickSize);
    this.lot = stepOf(rules.lotSize);
  }

  price(ticks: number): string {
    return formatSteps(ticks, this.tick);
  }

  qty(lots: number): string {
    return formatSteps(lots, this.lot);
  }

  level([price, qty]: PriceLevel): WireLevel {
    return [this.price(price), this.qty(qty)];
  }

  snapshot(depth: DepthSnapshot, levels: number, seq: number, halted: boolean): SnapshotMessage {
    return {
      type: "snapshot",
      symbol: this.symbol,
      seq,
      depth: levels,
      halted,
      bids: depth.bids.map((l) => this.level(l)),
      asks: depth.asks.map((l) => this.level(l)),
    };
  }

  /**
   * The sequenced messages of one committed batch, numbered from `lastSeq + 1`: a trade per fill in fill
   * order, then one delta with the final quantity of every level that changed (omitted when none did).
   */
  batch(log: EventLog, lastSeq: number): SequencedMessage[] {
    const out: SequencedMessage[] = [];
    const bids = new Map<number, number>();
    const asks = new Map<number, number>();
    let seq = lastSeq;
    for (let i = 0; i < log.length; i++) {
      const type = log.type(i);
      if (type === "fill") {
        out.push({
          type: "trade",
          symbol: this.symbol,
          seq: ++seq,
          price: this.price(log.price(i)),
          qty: this.qty(log.qty(i)),
          taker_side: log.takerSide(i) as Side,
          ts: log.ts(i),
        });
      } else if (type === "book") {
        (log.bookSide(i) === "buy" ? bids : asks).set(log.price(i), log.qty(i));
      }
    }
    if (bids.size > 0 || asks.size > 0) {
      const delta: DeltaMessage = {
        type: "delta",
        symbol: this.symbol,
        seq: ++seq,
        bids: this.levels(bids, -1),
        asks: this.levels(asks, 1),
      };
      out.push(delta);
    }
    return out;
  }

  private levels(changed: Map<number, number>, order: 1 | -1): WireLevel[] {
    return [...changed]
      .sort((a, b) => order * (a[0] - b[0]))
      .map(([price, qty]) => [this.price(price), this.qty(qty)]);
  }
}

/** How many sequenced messages {@link MarketDataFormatter.batch} would build, without building them. */
export function countSequenced(log: EventLog): number {
  let trades = 0;
  let changed = false;
  for (let i = 0; i < log.length; i++) {
    const type = log.type(i);
    if (type === "fill") trades++;
    else if (type === "book") changed = true;
  }
  return trades + (changed ? 1 : 0);
}

/** `?depth=` → levels, or `null` when it is not an integer in [1, MAX_DEPTH]. Absent → `fallback`. */
export function parseDepth(raw: string | null | undefined, fallback: number): number | null {
  if (raw === null || raw === undefined || raw === "") return fallback;
  if (!/^[0-9]{1,7}$/.test(raw)) return null;
  const depth = Number(raw);
  return depth >= 1 && depth <= MAX_DEPTH ? depth : null;
}

export type FrameResult = { ok: true; message: ClientMessage } | { ok: false; error: ErrorMessage };

const error = (code: ErrorMessage["code"], message: string): FrameResult => ({
  ok: false,
  error: { type: "error", code, message },
});

/** Read one client text frame (the caller has already checked its size). */
export function parseClientFrame(text: string): FrameResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return error("bad_frame", "frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return error("bad_frame", 'frame must be a JSON object with a "type"');
  }
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case "ping":
      return { ok: true, message: { type: "ping" } };
    case "subscribe": {
      if (frame.depth === undefined) return { ok: true, message: { type: "subscribe" } };
      const depth = frame.depth;
      if (typeof depth !== "number" || !Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH) {
        return error("invalid_depth", `depth must be an integer from 1 to ${MAX_DEPTH}`);
      }
      return { ok: true, message: { type: "subscribe", depth } };
    }
    default:
      return error("unknown_type", 'type must be "subscribe" or "ping"');
  }
}

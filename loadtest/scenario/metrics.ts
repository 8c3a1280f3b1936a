/**
 * What the load run measures, per operation type: latency in HDR histograms (microseconds, 3 significant
 * digits), counts by HTTP status, and a per-second timeline. WebSocket delivery lag has its own
 * histograms. Histograms travel in the results file as HDR's compressed base64 so runs can be merged or
 * re-analysed later (`mergeEncoded`).
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from "hdr-histogram-js";

/** 1 µs … 1 h, 3 significant digits. */
const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return build({
    bitBucketSize: "packed",
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  });
}

/** Records a duration in milliseconds (fractions kept to the microsecond; clamped to the range). */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(Math.min(HIGHEST_US, Math.max(1, us)));
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) {
    return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p95Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  }
  return {
    count: h.totalCount,
    meanMs: ms(h.mean),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p95Ms: ms(h.getValueAtPercentile(95)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
  };
}

export function encode(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

/** One histogram holding every value of the encoded ones (e.g. the same operation over several runs). */
export function mergeEncoded(encoded: readonly string[]): Histogram {
  const total = newHistogram();
  for (const e of encoded) total.add(decodeFromCompressedBase64(e));
  return total;
}

/** Points of a latency-by-percentile curve (HDR's classic plot), for the report's charts. */
export function percentileCurve(h: Histogram): { percentile: number; ms: number }[] {
  if (h.totalCount === 0) return [];
  const points = [0, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 100];
  return points.map((p) => ({ percentile: p, ms: ms(p === 100 ? h.maxValue : h.getValueAtPercentile(p)) }));
}

/**
 * Whether a response counts as an error (the availability figure), a business rejection (an expected
 * answer such as 403 insufficient buying power or 422 "order no longer open"), or a success.
 * 401 is an error: every simulated trader holds a valid token.
 */
export function classifyStatus(status: number): "ok" | "rejected" | "error" {
  if (status >= 200 && status < 300) return "ok";
  if (status === 0 || status === 401 || status === 429 || status >= 500) return "error";
  return "rejected";
}

export interface OpStats {
  hist: Histogram;
  count: number;
  ok: number;
  rejected: number;
  errors: number;
  /** "<status>" or "<status> <code>" → count. */
  byStatus: Map<string, number>;
}

export interface TimelinePoint {
  /** Seconds since the measured window started. */
  t: number;
  users: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  wsMessages: number;
  wsLagP95Ms: number;
}

/** Counters and histograms of one measured window (a run, or one step of a ramp). */
export class Window {
  readonly label: string;
  readonly ops = new Map<string, OpStats>();
  /** All HTTP requests of the window. */
  readonly all = newHistogram();
  /** Book stream: trade event time (book) → received by the client. */
  readonly bookLag = newHistogram();
  /** trade_updates: event time (account) → received by the client. */
  readonly tradeUpdateLag = newHistogram();
  wsMessages = 0;
  wsBytes = 0;
  gaps = 0;
  gapMessages = 0;
  outOfOrder = 0;
  duplicates = 0;
  wsDisconnects = 0;
  /** Which store answered history reads (X-PrepX-History-Source: postgres or session). */
  readonly historySources = new Map<string, number>();
  startedAt = 0;
  endedAt = 0;

  constructor(label: string) {
    this.label = label;
  }

  op(name: string): OpStats {
    let s = this.ops.get(name);
    if (!s) {
      s = { hist: newHistogram(), count: 0, ok: 0, rejected: 0, errors: 0, byStatus: new Map() };
      this.ops.set(name, s);
    }
    return s;
  }

  record(name: string, status: number, elapsedMs: number, code?: string): void {
    const s = this.op(name);
    s.count++;
    const kind = classifyStatus(status);
    if (kind === "ok") s.ok++;
    else if (kind === "rejected") s.rejected++;
    else s.errors++;
    const key = kind === "ok" ? String(status) : code ? `${status} ${code}` : String(status);
    s.byStatus.set(key, (s.byStatus.get(key) ?? 0) + 1);
    // Failed connections have no meaningful latency.
    if (status !== 0) {
      recordMs(s.hist, elapsedMs);
      recordMs(this.all, elapsedMs);
    }
  }

  get requests(): number {
    let n = 0;
    for (const s of this.ops.values()) n += s.count;
    return n;
  }

  get errors(): number {
    let n = 0;
    for (const s of this.ops.values()) n += s.errors;
    return n;
  }

  seconds(): number {
    return Math.max(0.001, ((this.endedAt || Date.now()) - this.startedAt) / 1000);
  }
}

/** A histogram per second for the timeline (reset after each tick). */
export class Ticker {
  private hist = newHistogram();
  private lag = newHistogram();
  private requests = 0;
  private errors = 0;
  private ws = 0;

  record(status: number, elapsedMs: number): void {
    this.requests++;
    if (classifyStatus(status) === "error") this.errors++;
    if (status !== 0) recordMs(this.hist, elapsedMs);
  }

  message(lagMs?: number): void {
    this.ws++;
    if (lagMs !== undefined) recordMs(this.lag, Math.max(0, lagMs));
  }

  tick(t: number, users: number): TimelinePoint {
    const s = summarize(this.hist);
    const point: TimelinePoint = {
      t,
      users,
      requests: this.requests,
      errors: this.errors,
      p50Ms: s.p50Ms,
      p95Ms: s.p95Ms,
      p99Ms: s.p99Ms,
      wsMessages: this.ws,
      wsLagP95Ms: summarize(this.lag).p95Ms,
    };
    this.hist.reset();
    this.lag.reset();
    this.requests = 0;
    this.errors = 0;
    this.ws = 0;
    return point;
  }
}

export interface OpReport {
  op: string;
  count: number;
  ok: number;
  rejected: number;
  errors: number;
  rps: number;
  latency: LatencySummary;
  byStatus: Record<string, number>;
  histogram: string;
}

export interface WindowReport {
  label: string;
  /** Epoch ms. */
  startedAt: number;
  endedAt: number;
  users: number;
  seconds: number;
  requests: number;
  rps: number;
  errors: number;
  errorRate: number;
  latency: LatencySummary;
  ops: OpReport[];
  ws: {
    messages: number;
    messagesPerSec: number;
    bytes: number;
    bookLag: LatencySummary;
    tradeUpdateLag: LatencySummary;
    gaps: number;
    gapMessages: number;
    outOfOrder: number;
    duplicates: number;
    disconnects: number;
    bookLagHistogram: string;
    tradeUpdateLagHistogram: string;
  };
  historySources: Record<string, number>;
  histogram: string;
}

export function reportWindow(w: Window, users: number): WindowReport {
  const seconds = w.seconds();
  const ops: OpReport[] = [...w.ops.entries()]
    .sort((a, b) => b[1].count - a[1].count)
    .map(([op, s]) => ({
      op,
      count: s.count,
      ok: s.ok,
      rejected: s.rejected,
      errors: s.errors,
      rps: round(s.count / seconds, 1),
      latency: summarize(s.hist),
      byStatus: Object.fromEntries([...s.byStatus.entries()].sort((a, b) => b[1] - a[1])),
      histogram: encode(s.hist),
    }));
  const requests = w.requests;
  return {
    label: w.label,
    startedAt: w.startedAt,
    endedAt: w.endedAt,
    users,
    seconds: round(seconds, 2),
    requests,
    rps: round(requests / seconds, 1),
    errors: w.errors,
    errorRate: requests === 0 ? 0 : round(w.errors / requests, 6),
    latency: summarize(w.all),
    ops,
    ws: {
      messages: w.wsMessages,
      messagesPerSec: round(w.wsMessages / seconds, 1),
      bytes: w.wsBytes,
      bookLag: summarize(w.bookLag),
      tradeUpdateLag: summarize(w.tradeUpdateLag),
      gaps: w.gaps,
      gapMessages: w.gapMessages,
      outOfOrder: w.outOfOrder,
      duplicates: w.duplicates,
      disconnects: w.wsDisconnects,
      bookLagHistogram: encode(w.bookLag),
      tradeUpdateLagHistogram: encode(w.tradeUpdateLag),
    },
    historySources: Object.fromEntries(w.historySources),
    histogram: encode(w.all),
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

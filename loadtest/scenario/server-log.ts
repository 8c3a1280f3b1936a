/**
 * Server-side time per route, from the worker's own access log (workers/middleware/request-context.ts
 * writes one JSON line per request with `duration_ms`). Set against the client's latency for the same
 * route it separates time spent in the worker (and the objects, Postgres and Redis behind it) from time
 * spent before the worker saw the request: the dev proxy, workerd's queue, the load generator's own loop.
 *
 * workerd's clock only moves across I/O, so `duration_ms` is exact to the I/O boundaries and misses pure
 * CPU stretches; good enough to see where the waiting is.
 */
import { readFileSync } from "node:fs";
import { type LatencySummary, newHistogram, recordMs, summarize } from "./metrics.ts";

export interface RouteTiming extends LatencySummary {
  route: string;
}

export interface HistoryWrites {
  /** Transactions the history consumer committed (one per shard per queue batch). */
  batches: number;
  events: number;
  /** Rows written (orders, fills, ledger, positions, daily). */
  rows: number;
  eventsPerSec: number;
  rowsPerSec: number;
  /** Commit time of one batch transaction. */
  commitMs: LatencySummary;
}

export interface ServerTimings {
  /** Per measured window, in the windows' order. */
  windows: { label: string; routes: RouteTiming[]; history: HistoryWrites }[];
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** `GET /v2/orders/{id}` from method and path. */
export function routeOf(method: string, path: string): string {
  return `${method} ${path.replace(UUID, "{id}").replace(/\/admin\/users\/[^/]+/, "/admin/users/{id}")}`;
}

export function serverTimings(
  logFile: string,
  windows: readonly { label: string; startedAt: number; endedAt: number }[],
): ServerTimings | null {
  let text: string;
  lastAt = 0;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return null;
  }
  const perWindow = windows.map(() => new Map<string, ReturnType<typeof newHistogram>>());
  const history = windows.map(() => ({ batches: 0, events: 0, rows: 0, commit: newHistogram() }));
  for (const line of text.split("\n")) {
    if (line.includes('"msg":"history batch committed"')) {
      countHistory(line, windows, history);
      continue;
    }
    if (!line.includes('"msg":"request"')) continue;
    const start = line.indexOf("{");
    if (start < 0) continue;
    let entry: { method?: string; path?: string; duration_ms?: number; ts?: string };
    try {
      entry = JSON.parse(line.slice(start));
    } catch {
      continue;
    }
    if (!entry.ts || entry.duration_ms === undefined || !entry.method || !entry.path) continue;
    const at = Date.parse(entry.ts);
    lastAt = at;
    const i = windows.findIndex((w) => at >= w.startedAt && at <= w.endedAt);
    if (i < 0) continue;
    const route = routeOf(entry.method, entry.path);
    const map = perWindow[i] as Map<string, ReturnType<typeof newHistogram>>;
    let h = map.get(route);
    if (!h) {
      h = newHistogram();
      map.set(route, h);
    }
    recordMs(h, Math.max(0.001, entry.duration_ms));
  }
  return {
    windows: windows.map((w, i) => {
      const h = history[i] as (typeof history)[number];
      const seconds = Math.max(0.001, (w.endedAt - w.startedAt) / 1000);
      return {
        label: w.label,
        routes: [...(perWindow[i] as Map<string, ReturnType<typeof newHistogram>>)]
          .map(([route, hist]) => ({ route, ...summarize(hist) }))
          .sort((a, b) => b.count - a.count),
        history: {
          batches: h.batches,
          events: h.events,
          rows: h.rows,
          eventsPerSec: Math.round((h.events / seconds) * 10) / 10,
          rowsPerSec: Math.round((h.rows / seconds) * 10) / 10,
          commitMs: summarize(h.commit),
        },
      };
    }),
  };
}

/**
 * A "history batch committed" line carries no timestamp: it is attributed to the window of the access
 * line logged just before it (`lastAt`), which is accurate to the log's interleaving.
 */
let lastAt = 0;

function countHistory(
  line: string,
  windows: readonly { startedAt: number; endedAt: number }[],
  history: { batches: number; events: number; rows: number; commit: ReturnType<typeof newHistogram> }[],
): void {
  const i = windows.findIndex((w) => lastAt >= w.startedAt && lastAt <= w.endedAt);
  if (i < 0) return;
  let entry: { events?: number; rows?: Record<string, number>; ms?: number };
  try {
    entry = JSON.parse(line.slice(line.indexOf("{")));
  } catch {
    return;
  }
  const h = history[i] as (typeof history)[number];
  h.batches++;
  h.events += entry.events ?? 0;
  h.rows += Object.values(entry.rows ?? {}).reduce((a, b) => a + b, 0);
  if (entry.ms !== undefined) recordMs(h.commit, Math.max(0.001, entry.ms));
}

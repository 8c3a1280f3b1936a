/**
 * A V8 CPU profile of the worker during the measured window (`--cpu-profile`, miniflare mode): through
 * workerd's inspector (Chrome DevTools Protocol over a WebSocket), `Profiler.start` … `Profiler.stop`. The
 * edge worker and its Durable Objects run in the same isolate, so one profile covers the request path and
 * the objects. The raw profile is saved next to the results (`.cpuprofile`, opens in Chrome DevTools) and
 * summarised as self time per function and per source file.
 */
import WebSocket from "ws";

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  /** Sampled milliseconds (the isolate's busy time plus idle samples). */
  totalMs: number;
  /**
   * Busy time by component of PrepX: each sample goes to the nearest frame on its stack that belongs to
   * a known component, so native work (SQLite, socket sends, fetch) counts for the code that asked for it.
   */
  byArea: { area: string; selfMs: number; share: number }[];
  /** Share of samples in `(idle)`: the isolate had nothing to run. */
  idleShare: number;
  topFunctions: { name: string; file: string; selfMs: number; share: number }[];
  topFiles: { file: string; selfMs: number; share: number }[];
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * Maps positions in the bundled worker back to the repository's sources (a source map v3 reader, enough
 * for `wrangler deploy --dry-run` output: `mappings` with base64 VLQ segments).
 */
export class SourceMap {
  private readonly sources: string[];
  /** Per generated line: [generated column, source index, source line], by column. */
  private readonly lines: Int32Array[] = [];

  constructor(map: { sources: string[]; mappings: string }) {
    this.sources = map.sources;
    let src = 0;
    let srcLine = 0;
    for (const line of map.mappings.split(";")) {
      const segs: number[] = [];
      let col = 0;
      for (const seg of line.split(",")) {
        if (!seg) continue;
        const v = decodeVlq(seg);
        col += v[0] ?? 0;
        if (v.length >= 4) {
          src += v[1] ?? 0;
          srcLine += v[2] ?? 0;
          segs.push(col, src, srcLine);
        }
      }
      this.lines.push(Int32Array.from(segs));
    }
  }

  /** 0-based generated line and column → "path:line" (1-based), or null. */
  lookup(line: number, column: number): { file: string; line: number } | null {
    const segs = this.lines[line];
    if (!segs || segs.length === 0) return null;
    let lo = 0;
    let hi = segs.length / 3 - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((segs[mid * 3] as number) <= column) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0) best = 0;
    const file = this.sources[segs[best * 3 + 1] as number];
    return file === undefined ? null : { file: cleanSource(file), line: (segs[best * 3 + 2] as number) + 1 };
  }
}

function decodeVlq(seg: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of seg) {
    const digit = B64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

function cleanSource(file: string): string {
  return shortFile(file.replace(/^(\.\.\/)+/, ""));
}

const AREAS: [RegExp, string][] = [
  [/market-maker|shared\/market\//, "market simulation (MarketMaker)"],
  [/market-data-hub/, "market-data hub"],
  [
    /workers\/consumers|workers\/history|drizzle-orm|@neondatabase|src\/pg-core|src\/sql\/|src\/entity/,
    "history: queue consumer + Postgres reads (drizzle, Neon driver)",
  ],
  [/@upstash/, "Redis client (revocation check, rate limit)"],
  [
    /durable-objects\/user-session|shared\/account|shared\/orders/,
    "UserSession (accounts, orders, trade_updates)",
  ],
  [
    /durable-objects\/order-book|shared\/engine|shared\/book-events/,
    "OrderBook (matching, journal, market data)",
  ],
  [/workers\/auth|jose\//, "edge: auth (JWT)"],
  [/workers\/|hono\/|@hono\/|zod\//, "edge: routing, validation, logging"],
];

/** The component a source file belongs to, or null for shared helpers and the runtime. */
export function areaOf(file: string): string | null {
  if (file.startsWith("durable-objects/sql.ts")) return null;
  for (const [re, area] of AREAS) if (re.test(file)) return area;
  return null;
}

/** Self time per function and per file; shares are of the non-idle time. */
export function summarizeProfile(p: CpuProfile, top = 25, map: SourceMap | null = null): ProfileSummary {
  const totalUs = Math.max(1, p.endTime - p.startTime);
  const samples = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const usPerSample = samples > 0 ? totalUs / samples : 0;
  let idle = 0;
  const byFn = new Map<string, { name: string; file: string; hits: number }>();
  const byFile = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const name = n.callFrame.functionName || "(anonymous)";
    if (name === "(idle)" || name === "(program)" || name === "(garbage collector)") {
      if (name === "(idle)") idle += hits;
    }
    const mapped =
      map && n.callFrame.url.endsWith("index.js")
        ? map.lookup(n.callFrame.lineNumber, n.callFrame.columnNumber ?? 0)
        : null;
    const file = mapped?.file ?? (shortFile(n.callFrame.url) || name);
    const where = mapped ? `${mapped.file}:${mapped.line}` : `${file}:${n.callFrame.lineNumber + 1}`;
    const key = `${name}@${where}`;
    const e = byFn.get(key) ?? { name, file: where, hits: 0 };
    e.hits += hits;
    byFn.set(key, e);
    byFile.set(file, (byFile.get(file) ?? 0) + hits);
  }
  // Areas: walk up from each sampled node to the first frame with a known component.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fileOf = (n: ProfileNode) => {
    const m =
      map && n.callFrame.url.endsWith("index.js")
        ? map.lookup(n.callFrame.lineNumber, n.callFrame.columnNumber ?? 0)
        : null;
    return m?.file ?? shortFile(n.callFrame.url);
  };
  const areaCache = new Map<number, string>();
  const areaOfNode = (n: ProfileNode): string => {
    const cached = areaCache.get(n.id);
    if (cached) return cached;
    let area: string | null = null;
    for (
      let cur: ProfileNode | undefined = n;
      cur && area === null;
      cur = byId.get(parent.get(cur.id) ?? -1)
    ) {
      area = areaOf(fileOf(cur));
    }
    const result = area ?? "runtime (GC, native, other)";
    areaCache.set(n.id, result);
    return result;
  };
  const byArea = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0 || n.callFrame.functionName === "(idle)") continue;
    const a = areaOfNode(n);
    byArea.set(a, (byArea.get(a) ?? 0) + hits);
  }
  const busy = Math.max(1, samples - idle);
  const ms = (hits: number) => Math.round((hits * usPerSample) / 100) / 10;
  const share = (hits: number) => Math.round((hits / busy) * 1000) / 10;
  return {
    totalMs: Math.round(totalUs / 1000),
    idleShare: samples > 0 ? Math.round((idle / samples) * 1000) / 1000 : 0,
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, hits]) => ({ area, selfMs: ms(hits), share: share(hits) })),
    topFunctions: [...byFn.values()]
      .filter((e) => e.name !== "(idle)")
      .sort((a, b) => b.hits - a.hits)
      .slice(0, top)
      .map((e) => ({ name: e.name, file: e.file, selfMs: ms(e.hits), share: share(e.hits) })),
    topFiles: [...byFile.entries()]
      .filter(([f]) => f !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, hits]) => ({ file, selfMs: ms(hits), share: share(hits) })),
  };
}

/** The part of a bundled source URL that names the module (node_modules/hono/…, workers/…). */
function shortFile(url: string): string {
  if (!url) return "";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  for (const root of ["workers/", "durable-objects/", "shared/"]) {
    const i = url.lastIndexOf(root);
    if (i >= 0) return url.slice(i);
  }
  return url.replace(/^.*\//, "");
}

class Cdp {
  private id = 0;
  private readonly pending = new Map<
    number,
    (r: { result?: unknown; error?: { message: string } }) => void
  >();
  readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id !== undefined) this.pending.get(m.id)?.(m);
    });
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (r) => {
        this.pending.delete(id);
        if (r.error) reject(new Error(`${method}: ${r.error.message}`));
        else resolve(r.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
}

export interface RunningProfile {
  stop(): Promise<CpuProfile>;
}

/** Starts profiling the worker's isolate (the target named after the worker, else the first one). */
export async function startCpuProfile(inspectorPort: number, intervalUs = 500): Promise<RunningProfile> {
  const res = await fetch(`http://127.0.0.1:${inspectorPort}/json`);
  const targets = (await res.json()) as { id: string; title?: string; webSocketDebuggerUrl?: string }[];
  const target =
    targets.find((t) => (t.title ?? "").includes("prepx-edge") && !(t.title ?? "").includes("core:")) ??
    targets.find((t) => !(t.title ?? "").startsWith("core:")) ??
    targets[0];
  if (!target) throw new Error("the inspector lists no targets");
  const url = target.webSocketDebuggerUrl ?? `ws://127.0.0.1:${inspectorPort}/${target.id}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const cdp = new Cdp(ws);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: intervalUs });
  await cdp.send("Profiler.start");
  return {
    async stop() {
      const r = await cdp.send<{ profile: CpuProfile }>("Profiler.stop");
      ws.close();
      return r.profile;
    },
  };
}

/**
 * The human-readable report of a run: Markdown (tables) and a self-contained HTML page with SVG charts
 * (latency by percentile per operation, the per-second timeline, CPU by component). No dependencies.
 */
import type { ChecksSummary } from "./checks.ts";
import type { ProfileSummary } from "./cpu-profile.ts";
import {
  type LatencySummary,
  mergeEncoded,
  percentileCurve,
  type TimelinePoint,
  type WindowReport,
} from "./metrics.ts";
import type { Options } from "./options.ts";
import type { BookProbe, ProbeFigure } from "./probe.ts";
import type { CpuProfileSummary } from "./profile.ts";
import type { ServerTimings } from "./server-log.ts";

export interface StepVerdict {
  users: number;
  pass: boolean;
  reasons: string[];
  groups: Record<string, LatencySummary>;
}

export interface RunResults {
  version: 1;
  runId: string;
  startedAt: string;
  finishedAt: string;
  options: Options;
  target: { mode: string; baseUrl: string };
  machine: {
    cores: number;
    cpu: string;
    node: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  setup: { seconds: number; registered: number; grantsFailed: number; sockets: number };
  windows: WindowReport[];
  verdicts: StepVerdict[];
  ceiling: number | null;
  streams: {
    gaps: number;
    gapMessages: number;
    stale: number;
    disconnects: number;
    messages: number;
    bookSockets: number;
    tradeUpdateSockets: number;
  };
  checks: ChecksSummary | null;
  cpu: CpuProfileSummary | null;
  serverTimings: ServerTimings | null;
  /** V8 CPU profiles of the worker's isolate, one per measured window (--cpu-profile). */
  workerProfiles: { label: string; summary: ProfileSummary }[];
  /** `--probe`: single-object capacities. */
  probes: ProbeFigure[] | null;
  bookProbe: BookProbe | null;
  timeline: TimelinePoint[];
  headline: {
    users: number;
    requests: number;
    rps: number;
    p95Ms: number;
    p99Ms: number;
    errorRate: number;
    wsLagP95Ms: number;
    gaps: number;
  };
  failure: string | null;
}

const pct = (x: number) => `${(x * 100).toFixed(3)} %`;

function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

export function renderMarkdown(r: RunResults): string {
  const o = r.options;
  const out: string[] = [];
  out.push(`# Load test ${r.startedAt}`);
  out.push("");
  out.push(
    `Server: **${r.target.mode}** (${r.target.baseUrl}) · machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node} · ` +
      `load average at start ${r.machine.loadAverageAtStart.join(" / ")}, at end ${r.machine.loadAverageAtEnd.join(" / ")}`,
  );
  out.push("");
  out.push(
    `Scenario: ${o.ramp.length > 0 ? `ramp ${o.ramp.join(" → ")}` : `${o.users}`} traders, ${o.duration} s measured after ${o.warmup} s warm-up, ` +
      `think time ${o.thinkMs} ms (bots ${Math.round(o.botFraction * 100)} % at ${o.botThinkMs} ms), symbols ${o.symbols.join(", ")} (Zipf ${o.zipf}), ` +
      `${o.books} book stream(s) of depth ${o.depth} per trader (people's at ${o.bookIntervalMs === 0 ? "every update" : `one frame per ${o.bookIntervalMs} ms`}, bots' at every update), seed "${o.seed}".`,
  );
  out.push("");
  if (r.failure) out.push(`**The run failed:** \`${r.failure.split("\n")[0]}\`\n`);
  out.push("## Headline");
  out.push("");
  out.push("```json");
  out.push(JSON.stringify(r.headline));
  out.push("```");
  out.push("");
  if (r.probes) {
    out.push("## Single-object capacities (--probe)");
    out.push("");
    out.push(
      table(
        ["what", "in flight", "per second", "p50 ms", "p95 ms", "errors"],
        r.probes.map((p) => [
          `\`${p.name}\``,
          p.concurrency,
          p.perSec,
          p.latency.p50Ms,
          p.latency.p95Ms,
          p.errors,
        ]),
      ),
    );
    out.push("");
  }
  if (r.bookProbe) {
    const b = r.bookProbe;
    out.push(
      `One OrderBook, driven from inside the worker: ${b.singleOrdersPerSec} orders/s one per RPC, ` +
        `${b.batchedOrdersPerSec} orders/s in batches of 100, no-op RPC ${b.pingRpcPerSec}/s; fan-out to ` +
        `${b.fanoutSockets} subscribers ${b.fanoutMsgsPerSec} messages/s delivered (${b.fanoutGaps} gaps).`,
    );
    out.push("");
  }
  if (r.verdicts.length > 0) {
    out.push(
      table(
        ["users", "verdict", "order placement p95", "account reads p95", "why"],
        r.verdicts.map((v) => [
          v.users,
          v.pass ? "PASS" : "MISS",
          `${v.groups["order placement"]?.p95Ms ?? "–"} ms`,
          `${v.groups["account reads"]?.p95Ms ?? "–"} ms`,
          v.reasons.join("; ") || "within targets",
        ]),
      ),
    );
    out.push("");
    if (r.ceiling !== null)
      out.push(`**Ceiling on this machine: ${r.ceiling} concurrent traders** within the targets.\n`);
  }
  for (const w of r.windows) {
    out.push(`## ${w.label === "run" ? "Measured window" : `Step: ${w.label}`}`);
    out.push("");
    out.push(
      `${w.requests} requests in ${w.seconds} s = **${w.rps} req/s**, errors ${w.errors} (${pct(w.errorRate)}), ` +
        `all requests p50 ${w.latency.p50Ms} · p95 ${w.latency.p95Ms} · p99 ${w.latency.p99Ms} · max ${w.latency.maxMs} ms.` +
        ` Load generator event-loop delay p99: ${(w as WindowReport & { generatorLoopP99Ms?: number }).generatorLoopP99Ms ?? "–"} ms.` +
        ` History reads answered by: ${
          Object.entries(w.historySources ?? {})
            .map(([k, v]) => `${k} ${v}`)
            .join(", ") || "–"
        }.`,
    );
    out.push("");
    out.push(
      table(
        [
          "operation",
          "count",
          "req/s",
          "p50 ms",
          "p95 ms",
          "p99 ms",
          "max ms",
          "errors",
          "rejected",
          "statuses",
        ],
        w.ops.map((op) => [
          `\`${op.op}\``,
          op.count,
          op.rps,
          op.latency.p50Ms,
          op.latency.p95Ms,
          op.latency.p99Ms,
          op.latency.maxMs,
          op.errors,
          op.rejected,
          Object.entries(op.byStatus)
            .map(([k, v]) => `${k}: ${v}`)
            .join(", "),
        ]),
      ),
    );
    out.push("");
    out.push(
      `WebSockets: ${w.ws.messages} messages (${w.ws.messagesPerSec}/s, ${(w.ws.bytes / 1e6).toFixed(1)} MB); ` +
        `book delivery lag (trade event → client) p50 ${w.ws.bookLag.p50Ms} · p95 ${w.ws.bookLag.p95Ms} · p99 ${w.ws.bookLag.p99Ms} · max ${w.ws.bookLag.maxMs} ms ` +
        `over ${w.ws.bookLag.count} trades; trade_updates lag p50 ${w.ws.tradeUpdateLag.p50Ms} · p95 ${w.ws.tradeUpdateLag.p95Ms} · max ${w.ws.tradeUpdateLag.maxMs} ms; ` +
        `gaps ${w.ws.gaps} (${w.ws.gapMessages} messages missing), out of order ${w.ws.outOfOrder}, duplicated fills ${w.ws.duplicates}, disconnects ${w.ws.disconnects}.`,
    );
    out.push("");
  }
  out.push("## Streams over the whole run");
  out.push("");
  const s = r.streams;
  out.push(
    `${s.bookSockets} book sockets, ${s.tradeUpdateSockets} trade_updates sockets; ${s.messages} sequenced book messages; ` +
      `gaps ${s.gaps} (${s.gapMessages} missing), out of order ${s.stale}, disconnects ${s.disconnects}.`,
  );
  out.push("");
  out.push("## Correctness checks");
  out.push("");
  if (r.checks) {
    const c = r.checks;
    out.push(
      `**${c.ok ? "All checks passed" : "Checks FAILED"}** over ${c.tradersChecked}/${c.traders} accounts.`,
    );
    out.push("");
    out.push(
      table(
        ["check", "result"],
        [
          [
            "acknowledged orders listed by GET /v2/orders?status=all",
            `${c.ackedOrders - c.lostOrders}/${c.ackedOrders} (lost ${c.lostOrders})`,
          ],
          ["canceled / replaced orders in that state", `${c.statusMismatches} mismatches`],
          ["order filled_qty = fills received", `${c.filledQtyMismatches} mismatches`],
          [
            "placements without an answer, found by client order id",
            `${c.unansweredFound}/${c.unansweredPlacements}`,
          ],
          ["fills received (trade_updates)", `${c.fillsReceived}, duplicated ${c.duplicateFills}`],
          [
            "FILL activities = fills received",
            `${c.activities} activities, ${c.duplicateActivities} duplicated ids, ${c.activityMismatches} accounts differ`,
          ],
          ["execution ids pair up across traders (one buy, one sell)", `${c.crossTraderConflicts} conflicts`],
          ["ledger: starting + realized − fees = cash + Σ cost basis", `${c.ledgerImbalanced} accounts off`],
          ["positions = granted + bought − sold", `${c.positionMismatches} mismatches`],
        ],
      ),
    );
    for (const e of c.examples) out.push(`- ${e}`);
    out.push("");
  } else {
    out.push("Not run.\n");
  }
  if (r.cpu) {
    out.push("## CPU by component (measured windows, % of one core)");
    out.push("");
    out.push(
      table(
        ["component", "mean %"],
        Object.entries(r.cpu.mean)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => [k, v]),
      ),
    );
    out.push("");
    out.push(
      `By process inside the run's trees: ${Object.entries(r.cpu.byProcess)
        .map(([k, v]) => `${k} ${v} %`)
        .join(", ")}. Machine busy ${r.cpu.machineMean} % of ${r.cpu.cores * 100} %.`,
    );
    out.push("");
  }
  if (r.serverTimings) {
    out.push("## Server-side time per route (worker access log) vs client latency");
    out.push("");
    for (const [i, sw] of r.serverTimings.windows.entries()) {
      const w = r.windows[i];
      out.push(`### ${sw.label}`);
      out.push("");
      out.push(
        table(
          ["route", "count", "server p50", "server p95", "server p99", "client p95 (same op)"],
          sw.routes.slice(0, 14).map((rt) => {
            const client = w?.ops.find((op) => sameRoute(op.op, rt.route));
            return [
              `\`${rt.route}\``,
              rt.count,
              rt.p50Ms,
              rt.p95Ms,
              rt.p99Ms,
              client ? client.latency.p95Ms : "–",
            ];
          }),
        ),
      );
      out.push("");
    }
  }
  for (const p of r.workerProfiles) {
    out.push(`## Worker CPU profile (V8, ${p.label})`);
    out.push("");
    out.push(
      `${p.summary.totalMs} ms sampled. Busy time by component (native work such as SQLite and socket sends counted for the code that called it):`,
    );
    out.push("");
    out.push(
      table(
        ["component", "ms", "share"],
        (p.summary.byArea ?? []).map((a) => [a.area, a.selfMs, `${a.share} %`]),
      ),
    );
    out.push("");
    out.push("Self time by file:");
    out.push("");
    out.push(
      table(
        ["file", "self ms", "share"],
        p.summary.topFiles.slice(0, 15).map((f) => [`\`${f.file}\``, f.selfMs, `${f.share} %`]),
      ),
    );
    out.push("");
    out.push("By function:");
    out.push("");
    out.push(
      table(
        ["function", "where", "self ms", "share"],
        p.summary.topFunctions
          .slice(0, 20)
          .map((f) => [`\`${f.name}\``, `\`${f.file}\``, f.selfMs, `${f.share} %`]),
      ),
    );
    out.push("");
  }
  out.push(
    `Setup (excluded from every figure): ${r.setup.registered} traders registered, ${r.setup.sockets} sockets opened, ${r.setup.seconds.toFixed(1)} s; ` +
      `${r.setup.grantsFailed} grants failed.`,
  );
  out.push("");
  return `${out.join("\n")}\n`;
}

/** Whether a client operation name ("POST /v2/orders (limit)") and a server route ("POST /v2/orders") match. */
function sameRoute(op: string, route: string): boolean {
  return op.replace(/ \(.*\)$/, "").split("?")[0] === route;
}

// --- HTML + SVG ----------------------------------------------------------------------------------

const COLORS = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#9333ea",
  "#ea580c",
  "#0891b2",
  "#be185d",
  "#4d7c0f",
  "#7c2d12",
  "#334155",
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface Series {
  name: string;
  points: [number, number][];
}

function lineChart(
  title: string,
  series: Series[],
  opts: { xLabel: string; yLabel: string; xTicks?: [number, string][]; logY?: boolean },
): string {
  const W = 760;
  const H = 300;
  const L = 60;
  const R = 190;
  const T = 30;
  const B = 40;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return "";
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const yMin = opts.logY ? Math.max(0.1, Math.min(...ys.filter((y) => y > 0), 1)) : 0;
  const yMax = Math.max(...ys, yMin * 10, 1);
  const fy = (y: number) =>
    opts.logY
      ? T +
        (H - T - B) *
          (1 -
            (Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin) || 1))
      : T + (H - T - B) * (1 - y / yMax);
  const fx = (x: number) => L + ((W - L - R) * (x - x0)) / (x1 - x0);
  const parts: string[] = [];
  parts.push(
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">`,
  );
  parts.push(`<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  parts.push(
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>`,
  );
  const yTicks = opts.logY
    ? Array.from(
        { length: Math.ceil(Math.log10(yMax)) - Math.floor(Math.log10(yMin)) + 1 },
        (_, i) => 10 ** (Math.floor(Math.log10(yMin)) + i),
      ).filter((v) => v >= yMin && v <= yMax * 1.0001)
    : Array.from({ length: 5 }, (_, i) => (yMax * (i + 1)) / 5);
  for (const v of yTicks) {
    parts.push(
      `<line x1="${L}" y1="${fy(v)}" x2="${W - R}" y2="${fy(v)}" stroke="#eee"/><text x="${L - 6}" y="${fy(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (const [x, label] of opts.xTicks ?? []) {
    parts.push(`<text x="${fx(x)}" y="${H - B + 16}" text-anchor="middle">${esc(label)}</text>`);
  }
  if (!opts.xTicks) {
    for (let i = 0; i <= 5; i++) {
      const x = x0 + ((x1 - x0) * i) / 5;
      parts.push(`<text x="${fx(x)}" y="${H - B + 16}" text-anchor="middle">${fmt(x)}</text>`);
    }
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points
      .map(([x, y], j) => `${j === 0 ? "M" : "L"}${fx(x).toFixed(1)},${fy(y).toFixed(1)}`)
      .join(" ");
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
    parts.push(
      `<rect x="${W - R + 10}" y="${T + i * 16}" width="10" height="10" fill="${color}"/><text x="${W - R + 24}" y="${T + i * 16 + 9}">${esc(s.name.slice(0, 28))}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

function fmt(v: number): string {
  if (v >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (v >= 10) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

/** x for a percentile on HDR's classic axis: log10(1 / (1 − p)). */
const pAxis = (p: number) => Math.log10(1 / (1 - Math.min(p, 99.999) / 100));

export function renderHtml(r: RunResults): string {
  const charts: string[] = [];
  const pTicks: [number, string][] = [
    [pAxis(0), "0"],
    [pAxis(90), "90"],
    [pAxis(99), "99"],
    [pAxis(99.9), "99.9"],
    [pAxis(99.99), "99.99"],
  ];
  for (const w of r.windows) {
    const series: Series[] = w.ops.map((op) => ({
      name: op.op,
      points: percentileCurve(mergeEncoded([op.histogram])).map(
        (p) => [pAxis(p.percentile), p.ms] as [number, number],
      ),
    }));
    charts.push(
      lineChart(`Latency by percentile — ${w.label} (${w.users} users)`, series, {
        xLabel: "percentile",
        yLabel: "ms (log)",
        xTicks: pTicks,
        logY: true,
      }),
    );
    const lag: Series[] = [
      {
        name: "book trade → client",
        points: percentileCurve(mergeEncoded([w.ws.bookLagHistogram])).map((p) => [
          pAxis(p.percentile),
          p.ms,
        ]),
      },
      {
        name: "trade_updates → client",
        points: percentileCurve(mergeEncoded([w.ws.tradeUpdateLagHistogram])).map((p) => [
          pAxis(p.percentile),
          p.ms,
        ]),
      },
    ];
    charts.push(
      lineChart(`WebSocket delivery lag — ${w.label}`, lag, {
        xLabel: "percentile",
        yLabel: "ms (log)",
        xTicks: pTicks,
        logY: true,
      }),
    );
  }
  if (r.timeline.length > 0) {
    charts.push(
      lineChart(
        "Latency over time (all requests, per second)",
        [
          { name: "p50", points: r.timeline.map((p) => [p.t, p.p50Ms]) },
          { name: "p95", points: r.timeline.map((p) => [p.t, p.p95Ms]) },
          { name: "p99", points: r.timeline.map((p) => [p.t, p.p99Ms]) },
        ],
        { xLabel: "seconds measured", yLabel: "ms" },
      ),
    );
    charts.push(
      lineChart(
        "Throughput over time",
        [
          { name: "requests/s", points: r.timeline.map((p) => [p.t, p.requests]) },
          { name: "ws messages/s ÷ 10", points: r.timeline.map((p) => [p.t, p.wsMessages / 10]) },
          { name: "users", points: r.timeline.map((p) => [p.t, p.users]) },
        ],
        { xLabel: "seconds measured", yLabel: "per second" },
      ),
    );
  }
  if (r.cpu && r.cpu.samples.length > 0) {
    const names = Object.keys(r.cpu.samples[0]?.components ?? {});
    charts.push(
      lineChart(
        "CPU by component (% of one core; whole run incl. setup)",
        names.map((n) => ({
          name: n,
          points: (r.cpu as CpuProfileSummary).samples.map(
            (s) => [s.t, s.components[n] ?? 0] as [number, number],
          ),
        })),
        { xLabel: "seconds since start", yLabel: "% of a core" },
      ),
    );
  }
  const md = renderMarkdown(r);
  return `<!doctype html><html><head><meta charset="utf-8"><title>PrepX load test ${esc(r.startedAt)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}pre{background:#f6f6f6;padding:1em;overflow:auto;white-space:pre-wrap}svg{display:block;margin:1.5em 0;border:1px solid #eee}</style></head>
<body><h1>PrepX load test</h1>
<p>${esc(r.startedAt)} · ${esc(r.target.mode)} · headline: <code>${esc(JSON.stringify(r.headline))}</code></p>
${charts.join("\n")}
<h2>Report</h2><pre>${esc(md)}</pre></body></html>
`;
}

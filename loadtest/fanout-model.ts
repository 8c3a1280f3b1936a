/**
 * The capacity model of docs/capacity.md: how 10,000, 100,000 and 1,000,000 concurrent traders are served,
 * from per-object costs measured on this machine and Cloudflare's, Neon's and Upstash's published limits.
 *
 * For N concurrent users it sizes every tier (UserSessions, OrderBooks and the ingress shards of hot
 * books, market-data relay trees, trade-event queues, Postgres shards, Redis), finds what breaks first in
 * the design as built today, and simulates the fan-out tree of the hottest symbol: each relay sends a
 * message to its children one after another, so the k-th child of a node receives it k × (cost of one send)
 * after the first; a leaf's delivery delay is the sum, over the layers above it, of the hop latency, its
 * position in its parent's send loop and the parent's queueing delay (M/D/1 at the parent's utilization).
 *
 * Pure: no I/O. `npm run loadtest -- --simulate 10000,100000,1000000` prints it.
 */
import { Rng, Zipf } from "./scenario/rng.ts";

/** Per-object costs measured on this machine (see docs/capacity.md, "Measured figures"). */
export interface MeasuredCosts {
  /** One OrderBook, one order per RPC, one in flight, durable before the reply: orders/s. */
  bookOrdersPerSec: number;
  /** One OrderBook, packed `submitMany` batches of 100 (what ingress objects would call): orders/s. */
  bookBatchedOrdersPerSec: number;
  /**
   * Socket writes per second one object sustains (fan-out to 1,000 sockets: 1 s / the server CPU of one
   * frame). A write is one frame, whatever number of coalesced messages it carries.
   */
  fanoutMsgsPerSec: number;
  /** Durable Object RPC round trips per second (no-op method, one in flight). */
  rpcPerSec: number;
  /** Requests per second one UserSession serves (placements through it, book included). */
  userSessionOpsPerSec: number;
  /** History rows per second one Postgres shard writes (history consumer, batched transactions). */
  pgRowsPerSecPerShard: number;
  /** Edge API requests per second per core of workerd, the whole request path included. */
  edgeRequestsPerCoreSec: number;
  /** Where the figures come from. */
  source: string;
}

/** Published platform limits (docs/capacity.md cites each). */
export interface PlatformLimits {
  /** Durable Object: soft limit of requests per second to one object. */
  doRequestsPerSec: number;
  /** Hibernatable WebSockets one object may hold (32,768), minus headroom. */
  socketsPerObject: number;
  /** Cloudflare Queues: messages per second per queue. */
  queueMsgsPerSec: number;
  /** Cloudflare Queues: concurrent consumer invocations per queue. */
  queueConsumerConcurrency: number;
  /** Neon: client connections through the pooler per compute. */
  neonPooledClients: number;
  /** Neon: Postgres max_connections of the shard compute size assumed (4 CU). */
  neonMaxConnections: number;
  /** Upstash Redis: commands per second one database is sized for (plan-dependent; an assumption). */
  redisCmdsPerSec: number;
}

/** What the users do. Defaults: the load scenario's active trader, and the roadmap's mix of watchers. */
export interface Workload {
  /** Share of concurrent users who trade (the others keep their streams open and read now and then). */
  activeShare: number;
  /** HTTP requests per second of an active trader (the scenario's think-time profile). */
  reqPerActiveUserSec: number;
  /** Requests per second of a watcher (account / positions refresh). */
  reqPerWatcherSec: number;
  /** Order commands (place, replace, cancel) per second of an active trader. */
  orderCmdsPerActiveUserSec: number;
  /** Book streams per user. */
  booksPerUser: number;
  /** Listed symbols and the Zipf exponent of their popularity (orders and watchers alike). */
  symbols: number;
  zipf: number;
  /** Trades per order command (how often an order executes something). */
  tradesPerOrderCmd: number;
  /** Trade-events queue messages per order command (order lifecycle events and fills, both sides). */
  eventsPerOrderCmd: number;
  /** Postgres rows per account event (order snapshot, fill, ledger lines, position snapshot, daily). */
  pgRowsPerEvent: number;
  /** Redis commands per request (one: the gate script reads revocations and counts the rate limit). */
  redisCmdsPerRequest: number;
  /** Target utilization of any single object or service (headroom for bursts). */
  utilization: number;
  /** Ingress coalescing window of hot books, ms. */
  batchWindowMs: number;
  /** Share of a book's time it may spend publishing market data (the rest is matching). */
  bookPublishShare: number;
  /** One network hop between objects (same region), ms. */
  hopMs: number;
  /** Coalesced updates per second a relay sends each client socket (0 = every message). */
  conflateHz: number;
  /**
   * Frames per second at most that a book sends each of its own subscribers today: it coalesces the
   * messages of a 50 ms window into one frame (`coalesceMs`, durable-objects/order-book.ts).
   */
  bookFrameHz: number;
}

export const DEFAULT_LIMITS: PlatformLimits = {
  doRequestsPerSec: 1_000,
  socketsPerObject: 30_000,
  queueMsgsPerSec: 5_000,
  queueConsumerConcurrency: 250,
  neonPooledClients: 10_000,
  neonMaxConnections: 1_678,
  redisCmdsPerSec: 10_000,
};

/**
 * Measured on this machine (2 cores, shared with the load generator and other work) with
 * `npm run loadtest -- --probe --no-market-sim` on Miniflare (one workerd, no wrangler proxy), the fan-out
 * cost per socket write from `npm run bench:book` (server CPU per frame of its paced flow, 68–70 µs), the
 * whole mix from the 1,000-trader run; docs/capacity.md lists each figure with its run. Overridden by
 * `--costs file.json`.
 */
export const DEFAULT_COSTS: MeasuredCosts = {
  bookOrdersPerSec: 1_318,
  bookBatchedOrdersPerSec: 45_147,
  fanoutMsgsPerSec: 14_500,
  rpcPerSec: 7_042,
  userSessionOpsPerSec: 117,
  pgRowsPerSecPerShard: 5_000,
  edgeRequestsPerCoreSec: 46,
  source: "this machine, 2026-11-27 (docs/capacity.md)",
};

export const DEFAULT_WORKLOAD: Workload = {
  activeShare: 0.05,
  reqPerActiveUserSec: 0.28,
  reqPerWatcherSec: 0.003,
  orderCmdsPerActiveUserSec: 0.13,
  booksPerUser: 1,
  symbols: 5,
  zipf: 1.1,
  tradesPerOrderCmd: 0.3,
  eventsPerOrderCmd: 2.6,
  pgRowsPerEvent: 3,
  redisCmdsPerRequest: 1,
  utilization: 0.7,
  batchWindowMs: 5,
  bookPublishShare: 0.3,
  hopMs: 2,
  conflateHz: 10,
  bookFrameHz: 20,
};

export interface FanoutLayer {
  /** 0 = the book; 1.. = relays; the last layer holds the client sockets. */
  depth: number;
  nodes: number;
  /** Children per node (relays below, or client sockets on the last layer). */
  childrenPerNode: number;
  /** Messages per second each child is sent. */
  msgsPerChild: number;
  /** Share of a node's send capacity in use (receiving counts as one send per message). */
  utilization: number;
}

export interface FanoutTree {
  symbol: number;
  watchers: number;
  /** Sequenced messages per second the book publishes. */
  msgsPerSec: number;
  /** Messages per second one client socket receives (after conflation). */
  socketMsgsPerSec: number;
  /** Client sockets one leaf relay serves at that rate (capacity and the socket cap). */
  socketsPerRelay: number;
  layers: FanoutLayer[];
  relays: number;
  /** True when even one socket at full rate exceeds a relay's send capacity. */
  overloaded: boolean;
}

/**
 * The fan-out tree of one symbol. The book publishes every sequenced message once to each first-layer
 * relay; a first-layer relay keeps an L2 replica (as the MarketDataHub does) and sends each child at most
 * `conflateHz` coalesced updates a second (a coalesced delta carries the last seq it includes; 0 = every
 * message); deeper relays forward those updates (coalescing coalesced deltas is exact). While the watchers
 * fit in the book's own publishing budget, the book serves them itself at full rate (today's design).
 * A node's capacity is the measured messages/s one object sends, used at `utilization`; each message it
 * receives costs about one send.
 */
export function fanoutTree(
  symbol: number,
  watchers: number,
  msgsPerSec: number,
  costs: Pick<MeasuredCosts, "fanoutMsgsPerSec">,
  limits: Pick<PlatformLimits, "socketsPerObject">,
  w: Pick<Workload, "utilization" | "bookPublishShare" | "conflateHz">,
): FanoutTree {
  const cap = costs.fanoutMsgsPerSec * w.utilization;
  const m = Math.max(msgsPerSec, 1e-9);
  const socketRate = w.conflateHz > 0 ? Math.min(m, w.conflateHz) : m;
  const bookChildren = Math.max(
    1,
    Math.min(limits.socketsPerObject, Math.floor((cap * w.bookPublishShare) / m)),
  );
  // First-layer relays take the book's full stream and conflate; deeper ones forward conflated updates.
  const firstChildren = Math.min(limits.socketsPerObject, Math.floor((cap - m) / socketRate));
  const deepChildren = Math.max(
    2,
    Math.min(limits.socketsPerObject, Math.floor((cap - socketRate) / socketRate)),
  );
  const overloaded = firstChildren < 1;
  const c1 = Math.max(1, firstChildren);
  const util = (children: number, rate: number, input: number) =>
    (children * rate + input) / costs.fanoutMsgsPerSec;
  if (watchers <= bookChildren) {
    return {
      symbol,
      watchers,
      msgsPerSec,
      socketMsgsPerSec: msgsPerSec,
      socketsPerRelay: c1,
      layers: [
        {
          depth: 0,
          nodes: 1,
          childrenPerNode: Math.ceil(watchers),
          msgsPerChild: msgsPerSec,
          utilization: util(watchers, m, 0),
        },
      ],
      relays: 0,
      overloaded,
    };
  }
  // The shallowest tree whose first layer the book can feed: node counts per layer, top first.
  let counts: number[] = [];
  for (let depth = 1; depth <= 8; depth++) {
    const below: number[] = [];
    let n = watchers;
    for (let d = depth; d >= 1; d--) {
      n = Math.ceil(n / (d === 1 ? c1 : deepChildren));
      below.push(n);
    }
    counts = below.reverse();
    if ((counts[0] as number) <= bookChildren) break;
  }
  const layers: FanoutLayer[] = [
    {
      depth: 0,
      nodes: 1,
      childrenPerNode: counts[0] as number,
      msgsPerChild: m,
      utilization: util(counts[0] as number, m, 0),
    },
  ];
  counts.forEach((nodes, i) => {
    const below = i + 1 < counts.length ? (counts[i + 1] as number) : watchers;
    const per = Math.ceil(below / nodes);
    layers.push({
      depth: i + 1,
      nodes,
      childrenPerNode: per,
      msgsPerChild: socketRate,
      utilization: util(per, socketRate, i === 0 ? m : socketRate),
    });
  });
  return {
    symbol,
    watchers,
    msgsPerSec,
    socketMsgsPerSec: socketRate,
    socketsPerRelay: counts.length === 1 ? c1 : deepChildren,
    layers,
    relays: counts.reduce((a, b) => a + b, 0),
    overloaded,
  };
}

export interface Plan {
  users: number;
  activeUsers: number;
  requestsPerSec: number;
  orderCmdsPerSec: number;
  hottestShare: number;
  hottestOrdersPerSec: number;
  userSessions: number;
  orderBooks: number;
  /** Books whose order rate needs ingress shards, and how many shards the hottest needs. */
  booksWithIngress: number;
  hottestIngressShards: number;
  hottestBatchSize: number;
  /** Utilization of the hottest book (direct or batched). */
  hottestBookUtilization: number;
  hottestTree: FanoutTree;
  relayObjects: number;
  bookSockets: number;
  tradeUpdateSockets: number;
  queueMsgsPerSec: number;
  queues: number;
  pgRowsPerSec: number;
  pgShards: number;
  pgConnectionsPerShard: number;
  redisCmdsPerSec: number;
  redisDatabases: number;
  edgeCores: number;
  /** Utilization of each single resource in the design as built today (> 1 = broken), worst first. */
  today: { resource: string; utilization: number; note: string }[];
  breaksFirst: string;
}

/** Sequenced messages per second of a book with `orders` commands/s, batched when it has ingress shards. */
function bookMsgsPerSec(orders: number, batchesPerSec: number | null, w: Workload): number {
  const trades = orders * w.tradesPerOrderCmd;
  // Unbatched: about one delta per command; batched: one delta per batch.
  return trades + (batchesPerSec === null ? orders : Math.min(orders, batchesPerSec));
}

export function plan(
  users: number,
  costs: MeasuredCosts = DEFAULT_COSTS,
  limits: PlatformLimits = DEFAULT_LIMITS,
  w: Workload = DEFAULT_WORKLOAD,
): Plan {
  const active = users * w.activeShare;
  const requestsPerSec = active * w.reqPerActiveUserSec + (users - active) * w.reqPerWatcherSec;
  const orderCmdsPerSec = active * w.orderCmdsPerActiveUserSec;
  const zipf = new Zipf(w.symbols, w.zipf);
  const directCap = Math.min(costs.bookOrdersPerSec, limits.doRequestsPerSec) * w.utilization;
  const ingressCap = Math.min(limits.doRequestsPerSec, costs.rpcPerSec) * w.utilization;

  let booksWithIngress = 0;
  let relayObjects = 0;
  let hottestTree: FanoutTree | null = null;
  let hottestIngress = 0;
  let hottestBatch = 1;
  let hottestUtil = 0;
  zipf.probabilities.forEach((p, k) => {
    const orders = orderCmdsPerSec * p;
    let shards = 0;
    let batchesPerSec: number | null = null;
    let util = orders / (directCap / w.utilization);
    if (orders > directCap) {
      booksWithIngress++;
      shards = Math.ceil(orders / ingressCap);
      batchesPerSec = shards * (1000 / w.batchWindowMs);
      util = orders / costs.bookBatchedOrdersPerSec;
    }
    const tree = fanoutTree(
      k + 1,
      users * w.booksPerUser * p,
      bookMsgsPerSec(orders, batchesPerSec, w),
      costs,
      limits,
      w,
    );
    relayObjects += tree.relays;
    if (k === 0) {
      hottestTree = tree;
      hottestIngress = shards;
      hottestBatch = batchesPerSec === null ? 1 : Math.max(1, orders / Math.min(batchesPerSec, orders));
      hottestUtil = util;
    }
  });
  const tree = hottestTree as unknown as FanoutTree;
  const hottestShare = zipf.probabilities[0] as number;
  const queueMsgsPerSec = orderCmdsPerSec * w.eventsPerOrderCmd;
  const queues = Math.max(1, Math.ceil(queueMsgsPerSec / (limits.queueMsgsPerSec * w.utilization)));
  const pgRowsPerSec = queueMsgsPerSec * w.pgRowsPerEvent;
  const pgShards = Math.max(1, Math.ceil(pgRowsPerSec / (costs.pgRowsPerSecPerShard * w.utilization)));
  // Each consumer invocation holds one connection per shard while its transaction runs.
  const pgConnectionsPerShard = Math.min(queues * limits.queueConsumerConcurrency, limits.neonPooledClients);
  const redisCmdsPerSec = requestsPerSec * w.redisCmdsPerRequest;
  const redisDatabases = Math.max(1, Math.ceil(redisCmdsPerSec / (limits.redisCmdsPerSec * w.utilization)));
  const hotWatchers = users * w.booksPerUser * hottestShare;
  const hotOrders = orderCmdsPerSec * hottestShare;
  const hotMsgs = bookMsgsPerSec(hotOrders, null, w);

  // The design as built today: orders straight to the book, sockets on the book, one queue, two shards,
  // one Redis.
  const today = [
    {
      resource: "hottest OrderBook, one order per RPC",
      utilization: hotOrders / Math.min(costs.bookOrdersPerSec, limits.doRequestsPerSec),
      note: `${Math.round(hotOrders)} orders/s into one object`,
    },
    {
      resource: "hottest OrderBook's sockets (cap)",
      utilization: hotWatchers / limits.socketsPerObject,
      note: `${Math.round(hotWatchers)} subscribers on one object (30,000 accepted)`,
    },
    {
      resource: "hottest OrderBook's fan-out (send time)",
      utilization: (hotWatchers * Math.min(hotMsgs, w.bookFrameHz)) / costs.fanoutMsgsPerSec,
      note: `${Math.round(hotWatchers)} sockets × ${Math.round(Math.min(hotMsgs, w.bookFrameHz))} frames/s (${Math.round(hotMsgs)} msgs/s)`,
    },
    {
      resource: "trade-events queue (one)",
      utilization: queueMsgsPerSec / limits.queueMsgsPerSec,
      note: `${Math.round(queueMsgsPerSec)} msgs/s`,
    },
    {
      resource: "Postgres shards (two)",
      utilization: pgRowsPerSec / (2 * costs.pgRowsPerSecPerShard),
      note: `${Math.round(pgRowsPerSec)} rows/s`,
    },
    {
      resource: "Redis (one database)",
      utilization: redisCmdsPerSec / limits.redisCmdsPerSec,
      note: `${Math.round(redisCmdsPerSec)} commands/s`,
    },
  ].sort((a, b) => b.utilization - a.utilization);
  const worst = today[0] as (typeof today)[number];
  return {
    users,
    activeUsers: Math.round(active),
    requestsPerSec: Math.round(requestsPerSec),
    orderCmdsPerSec: Math.round(orderCmdsPerSec),
    hottestShare: round(hottestShare, 3),
    hottestOrdersPerSec: Math.round(hotOrders),
    userSessions: users,
    orderBooks: w.symbols,
    booksWithIngress,
    hottestIngressShards: hottestIngress,
    hottestBatchSize: round(hottestBatch, 1),
    hottestBookUtilization: round(hottestUtil, 2),
    hottestTree: tree,
    relayObjects,
    bookSockets: Math.round(users * w.booksPerUser),
    tradeUpdateSockets: users,
    queueMsgsPerSec: Math.round(queueMsgsPerSec),
    queues,
    pgRowsPerSec: Math.round(pgRowsPerSec),
    pgShards,
    pgConnectionsPerShard,
    redisCmdsPerSec: Math.round(redisCmdsPerSec),
    redisDatabases,
    edgeCores: round(requestsPerSec / costs.edgeRequestsPerCoreSec, 1),
    today: today.map((t) => ({ ...t, utilization: round(t.utilization, 2) })),
    breaksFirst:
      worst.utilization > 1 ? `${worst.resource} (${round(worst.utilization, 1)}× its capacity)` : "nothing",
  };
}

export interface DeliverySimulation {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Monte Carlo over the leaves of a fan-out tree: a leaf's delay is, per layer above it, one hop, its
 * position in its parent's send loop (uniform) times the loop's length, and the parent's mean M/D/1
 * queueing delay at its utilization; plus, when the leaf conflates, the wait for the socket's next slot.
 */
export function simulateDelivery(
  tree: FanoutTree,
  costs: Pick<MeasuredCosts, "fanoutMsgsPerSec">,
  hopMs: number,
  samples = 100_000,
  seed = "fanout",
): DeliverySimulation {
  const rng = new Rng(seed);
  const sendMs = 1000 / costs.fanoutMsgsPerSec;
  const out = new Float64Array(samples);
  // A conflating leaf holds a message until the socket's next slot: uniform over one period.
  const conflateMs = tree.socketMsgsPerSec < tree.msgsPerSec ? 1000 / tree.socketMsgsPerSec : 0;
  for (let i = 0; i < samples; i++) {
    let t = rng.next() * conflateMs;
    for (const layer of tree.layers) {
      const loopMs = layer.childrenPerNode * sendMs;
      const rho = Math.min(0.99, layer.utilization);
      const wait = (rho / (2 * (1 - rho))) * loopMs;
      t += hopMs + wait + rng.next() * loopMs;
    }
    out[i] = t;
  }
  out.sort();
  const at = (p: number) => round(out[Math.min(samples - 1, Math.floor((p / 100) * samples))] as number, 1);
  return {
    samples,
    p50Ms: at(50),
    p95Ms: at(95),
    p99Ms: at(99),
    maxMs: round(out[samples - 1] as number, 1),
  };
}

export interface CapacityReport {
  costs: MeasuredCosts;
  limits: PlatformLimits;
  workload: Workload;
  plans: (Plan & { delivery: DeliverySimulation })[];
  summary: {
    users: number;
    requestsPerSec: number;
    hottestOrdersPerSec: number;
    relays: number;
    relayDepth: number;
    ingressShards: number;
    queues: number;
    pgShards: number;
    deliveryP99Ms: number;
    breaksFirst: string;
  }[];
}

export function capacityReport(
  users: readonly number[],
  costs: Partial<MeasuredCosts> = {},
  workload: Partial<Workload> = {},
  limits: Partial<PlatformLimits> = {},
): CapacityReport {
  const c = { ...DEFAULT_COSTS, ...costs };
  const l = { ...DEFAULT_LIMITS, ...limits };
  const w = { ...DEFAULT_WORKLOAD, ...workload };
  const plans = users.map((n) => {
    const p = plan(n, c, l, w);
    return { ...p, delivery: simulateDelivery(p.hottestTree, c, w.hopMs) };
  });
  return {
    costs: c,
    limits: l,
    workload: w,
    plans,
    summary: plans.map((p) => ({
      users: p.users,
      requestsPerSec: p.requestsPerSec,
      hottestOrdersPerSec: p.hottestOrdersPerSec,
      relays: p.relayObjects,
      relayDepth: p.hottestTree.layers.length - 1,
      ingressShards: p.hottestIngressShards,
      queues: p.queues,
      pgShards: p.pgShards,
      deliveryP99Ms: p.delivery.p99Ms,
      breaksFirst: p.breaksFirst,
    })),
  };
}

export function formatCapacityReport(r: CapacityReport): string {
  const lines: string[] = [];
  const n = (x: number) => x.toLocaleString("en-US");
  lines.push(`Capacity model — costs: ${r.costs.source}`);
  lines.push(
    `workload: ${r.workload.activeShare * 100} % active traders at ${r.workload.reqPerActiveUserSec} req/s and ` +
      `${r.workload.orderCmdsPerActiveUserSec} order commands/s; watchers ${r.workload.reqPerWatcherSec} req/s; ` +
      `${r.workload.booksPerUser} book stream(s) per user; ${r.workload.symbols} symbols, Zipf ${r.workload.zipf}; ` +
      `target utilization ${r.workload.utilization}`,
  );
  for (const p of r.plans) {
    lines.push("");
    lines.push(
      `── ${n(p.users)} concurrent users (${n(p.activeUsers)} trading): ${n(p.requestsPerSec)} req/s, ${n(p.orderCmdsPerSec)} order commands/s`,
    );
    lines.push(
      `  UserSession objects      ${n(p.userSessions)} (one per user; ${n(p.tradeUpdateSockets)} trade_updates sockets, one each)`,
    );
    lines.push(
      `  OrderBook objects        ${n(p.orderBooks)}; hottest takes ${(p.hottestShare * 100).toFixed(1)} % = ${n(p.hottestOrdersPerSec)} orders/s` +
        (p.hottestIngressShards > 0
          ? ` → ${p.hottestIngressShards} ingress shard(s), batches of ~${p.hottestBatchSize}, book at ${Math.round(p.hottestBookUtilization * 100)} % of batched capacity`
          : ` → direct, book at ${Math.round(p.hottestBookUtilization * 100)} % of single-order capacity`),
    );
    const t = p.hottestTree;
    lines.push(
      `  Market data              ${n(p.bookSockets)} book sockets; hottest symbol ${n(Math.round(t.watchers))} watchers × ${n(Math.round(t.msgsPerSec))} msgs/s; ` +
        `${t.socketMsgsPerSec < t.msgsPerSec ? `conflated to ${n(t.socketMsgsPerSec)}/s per socket, ` : ""}≤ ${n(t.socketsPerRelay)} sockets per leaf relay${t.overloaded ? " (OVERLOADED)" : ""}`,
    );
    for (const layer of t.layers) {
      lines.push(
        `    layer ${layer.depth}: ${n(layer.nodes)} ${layer.depth === 0 ? "book" : "relay(s)"} × ${n(layer.childrenPerNode)} children at ${n(Math.round(layer.msgsPerChild))} msgs/s, ${Math.round(layer.utilization * 100)} % of send capacity`,
      );
    }
    lines.push(
      `    relay objects, all symbols: ${n(p.relayObjects)}; simulated delivery (book → client, hottest): p50 ${p.delivery.p50Ms} · p95 ${p.delivery.p95Ms} · p99 ${p.delivery.p99Ms} ms`,
    );
    lines.push(`  trade-events queues      ${p.queues} for ${n(p.queueMsgsPerSec)} msgs/s`);
    lines.push(
      `  Postgres shards          ${p.pgShards} for ${n(p.pgRowsPerSec)} rows/s (≤ ${n(p.pgConnectionsPerShard)} pooled connections each)`,
    );
    lines.push(
      `  Redis                    ${p.redisDatabases} database(s) for ${n(p.redisCmdsPerSec)} commands/s`,
    );
    lines.push(`  Edge CPU                 ~${p.edgeCores} cores of Worker time`);
    lines.push(
      `  As built today, load vs capacity, worst first: ${p.today
        .slice(0, 3)
        .map(
          (x) =>
            `${x.resource} ${x.utilization < 10 ? x.utilization.toFixed(2) : Math.round(x.utilization).toLocaleString("en-US")}×`,
        )
        .join("; ")}`,
    );
    lines.push(`  Breaks first today: ${p.breaksFirst}`);
  }
  return lines.join("\n");
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

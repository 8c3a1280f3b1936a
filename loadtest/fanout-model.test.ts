import { describe, expect, it } from "vitest";
import {
  capacityReport,
  DEFAULT_COSTS,
  DEFAULT_LIMITS,
  DEFAULT_WORKLOAD,
  fanoutTree,
  formatCapacityReport,
  plan,
  simulateDelivery,
} from "./fanout-model.ts";

const costs = { fanoutMsgsPerSec: 50_000 };
const limits = { socketsPerObject: 30_000 };
const w = { utilization: 0.7, bookPublishShare: 0.3, conflateHz: 10 };

describe("fan-out tree", () => {
  it("lets the book serve its sockets itself while they fit its publishing budget", () => {
    const t = fanoutTree(1, 100, 20, costs, limits, w);
    expect(t.relays).toBe(0);
    expect(t.layers).toHaveLength(1);
    expect(t.layers[0]?.childrenPerNode).toBe(100);
  });

  it("puts every watcher on a relay that can afford its message rate, under the socket cap", () => {
    for (const [watchers, rate] of [
      [50_000, 40],
      [464_000, 1_900],
      [1_000_000, 5],
    ] as const) {
      const t = fanoutTree(1, watchers, rate, costs, limits, w);
      const leaves = t.layers.at(-1);
      if (!leaves) throw new Error("no layers");
      expect(leaves.nodes * leaves.childrenPerNode).toBeGreaterThanOrEqual(watchers);
      for (const layer of t.layers) {
        expect(layer.childrenPerNode).toBeLessThanOrEqual(30_000);
        expect(layer.utilization).toBeLessThanOrEqual(0.7 * 1.01);
      }
      // Each layer feeds exactly the nodes of the next.
      for (let i = 0; i + 1 < t.layers.length; i++) {
        const up = t.layers[i];
        const down = t.layers[i + 1];
        if (!up || !down) throw new Error("missing layer");
        expect(up.nodes * up.childrenPerNode).toBeGreaterThanOrEqual(down.nodes);
      }
    }
  });

  it("conflates client sockets to the configured rate and needs fewer relays for it", () => {
    const conflated = fanoutTree(1, 200_000, 500, costs, limits, w);
    const full = fanoutTree(1, 200_000, 500, costs, limits, { ...w, conflateHz: 0 });
    expect(conflated.socketMsgsPerSec).toBe(10);
    expect(full.socketMsgsPerSec).toBe(500);
    expect(conflated.relays).toBeLessThan(full.relays);
  });

  it("flags a stream one relay cannot send even once per socket", () => {
    expect(fanoutTree(1, 10_000, 60_000, costs, limits, { ...w, conflateHz: 0 }).overloaded).toBe(true);
  });
});

describe("capacity plan", () => {
  it("adds ingress shards only when the hottest book exceeds one object's direct capacity", () => {
    const small = plan(10_000);
    expect(small.hottestIngressShards).toBe(0);
    const huge = plan(1_000_000, DEFAULT_COSTS, DEFAULT_LIMITS, { ...DEFAULT_WORKLOAD, activeShare: 0.5 });
    expect(huge.hottestIngressShards).toBeGreaterThan(0);
    expect(huge.hottestBatchSize).toBeGreaterThan(1);
  });

  it("scales queues and shards with the event rate", () => {
    const a = plan(100_000);
    const b = plan(1_000_000);
    expect(b.queueMsgsPerSec).toBeCloseTo(a.queueMsgsPerSec * 10, -1);
    expect(b.queues).toBeGreaterThanOrEqual(a.queues);
    expect(b.pgShards).toBeGreaterThanOrEqual(a.pgShards);
    expect(b.userSessions).toBe(1_000_000);
  });

  it("counts a book's own subscribers at most one frame per coalescing window", () => {
    const fanout = (bookFrameHz: number) =>
      plan(100_000, DEFAULT_COSTS, DEFAULT_LIMITS, { ...DEFAULT_WORKLOAD, bookFrameHz }).today.find((t) =>
        t.resource.includes("fan-out"),
      )?.utilization ?? 0;
    // The hottest book publishes far more than 20 messages a second at 100,000 users.
    expect(fanout(20) * 2).toBeCloseTo(fanout(40), 1);
    expect(fanout(1_000_000)).toBeGreaterThan(fanout(20) * 10);
  });

  it("names the first thing to break in today's design", () => {
    const p = plan(1_000_000);
    expect(p.today[0]?.utilization).toBeGreaterThan(1);
    expect(p.breaksFirst).toContain(p.today[0]?.resource ?? "?");
    expect(
      plan(10, DEFAULT_COSTS, DEFAULT_LIMITS, { ...DEFAULT_WORKLOAD, activeShare: 0.01 }).breaksFirst,
    ).toBe("nothing");
  });
});

describe("delivery simulation", () => {
  it("is reproducible and ordered", () => {
    const t = fanoutTree(1, 464_000, 1_900, costs, limits, w);
    const a = simulateDelivery(t, costs, 2, 20_000, "s");
    const b = simulateDelivery(t, costs, 2, 20_000, "s");
    expect(a).toEqual(b);
    expect(a.p50Ms).toBeLessThanOrEqual(a.p95Ms);
    expect(a.p95Ms).toBeLessThanOrEqual(a.p99Ms);
    expect(a.p99Ms).toBeLessThanOrEqual(a.maxMs);
  });

  it("costs at least one hop per layer", () => {
    const t = fanoutTree(1, 464_000, 1_900, costs, limits, w);
    expect(simulateDelivery(t, costs, 5, 5_000).p50Ms).toBeGreaterThan(5 * t.layers.length);
  });
});

describe("report", () => {
  it("covers every asked user count and prints a line per tier", () => {
    const r = capacityReport([10_000, 100_000, 1_000_000]);
    expect(r.summary.map((s) => s.users)).toEqual([10_000, 100_000, 1_000_000]);
    const text = formatCapacityReport(r);
    for (const word of ["UserSession", "OrderBook", "relay", "queues", "Postgres", "Redis", "Breaks first"]) {
      expect(text).toContain(word);
    }
  });
});

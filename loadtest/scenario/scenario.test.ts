import { describe, expect, it } from "vitest";
import { crossTraderConflicts, ledgerDifference } from "./checks.ts";
import { areaOf, SourceMap, summarizeProfile } from "./cpu-profile.ts";
import { assertLocalTarget, networkFailure } from "./http.ts";
import {
  classifyStatus,
  encode,
  mergeEncoded,
  newHistogram,
  recordMs,
  summarize,
  Window,
} from "./metrics.ts";
import { DEFAULT_MIX, parseMix, parseOptions } from "./options.ts";
import { hashSeed, Rng, Zipf } from "./rng.ts";
import { routeOf } from "./server-log.ts";
import { SeqTracker, scanBookFrame, scanBookMessage } from "./streams.ts";

describe("requests without an answer", () => {
  it("are status 0 with the socket error's code, marked when the socket was reused", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(networkFailure(reset, true, 5)).toEqual({
      status: 0,
      body: { code: "ECONNRESET_reused", message: "read ECONNRESET" },
      ms: 5,
      headers: {},
    });
    expect(networkFailure(new Error("timeout"), false, 30_000).body).toMatchObject({ code: "timeout" });
    expect(networkFailure(new Error("socket hang up"), false, 1).body).toMatchObject({
      code: "network_error",
    });
  });
});

describe("seeded randomness", () => {
  it("repeats the same sequence for the same seed and differs for another", () => {
    const a = new Rng("prepx/trader/1");
    const b = new Rng("prepx/trader/1");
    const c = new Rng("prepx/trader/2");
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    expect(hashSeed("prepx")).toBe(hashSeed("prepx"));
  });

  it("keeps draws inside their ranges", () => {
    const rng = new Rng(7);
    for (let i = 0; i < 10_000; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
      const n = rng.int(3, 5);
      expect(n >= 3 && n <= 5).toBe(true);
    }
  });

  it("draws exponential think times with the asked mean", () => {
    const rng = new Rng("think");
    let sum = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) sum += rng.exp(5_000);
    expect(Math.abs(sum / n - 5_000)).toBeLessThan(150);
  });
});

describe("Zipf popularity", () => {
  it("gives rank 1 the largest share, falling as 1/k^s", () => {
    const z = new Zipf(5, 1);
    const h = 1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5;
    expect(z.probabilities[0]).toBeCloseTo(1 / h, 10);
    expect(z.probabilities[4]).toBeCloseTo(1 / 5 / h, 10);
    expect(z.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it("samples ranks with those frequencies", () => {
    const z = new Zipf(5, 1.1);
    const rng = new Rng("zipf");
    const counts = [0, 0, 0, 0, 0];
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const k = z.sample(rng);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    counts.forEach((c, i) => {
      expect(Math.abs(c / n - (z.probabilities[i] as number))).toBeLessThan(0.01);
    });
  });

  it("with s = 0 is uniform", () => {
    expect(new Zipf(4, 0).probabilities).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it("draws distinct ranks for a watch list, hot ones most often first", () => {
    const z = new Zipf(5, 1.1);
    const rng = new Rng("watch");
    let firstIsHottest = 0;
    for (let i = 0; i < 2_000; i++) {
      const picks = z.sampleDistinct(rng, 3);
      expect(new Set(picks).size).toBe(3);
      if (picks[0] === 0) firstIsHottest++;
    }
    expect(firstIsHottest / 2_000).toBeGreaterThan(0.35);
    expect(z.sampleDistinct(rng, 9)).toHaveLength(5);
  });
});

describe("latency histograms", () => {
  it("summarises percentiles in milliseconds", () => {
    const h = newHistogram();
    for (let i = 1; i <= 1000; i++) recordMs(h, i);
    const s = summarize(h);
    expect(s.count).toBe(1000);
    expect(s.p50Ms).toBeGreaterThan(499);
    expect(s.p50Ms).toBeLessThan(501);
    expect(s.p99Ms).toBeGreaterThan(989);
    expect(s.maxMs).toBeGreaterThanOrEqual(999);
  });

  it("merges encoded histograms into one with every value", () => {
    const a = newHistogram();
    const b = newHistogram();
    for (let i = 0; i < 900; i++) recordMs(a, 10);
    for (let i = 0; i < 100; i++) recordMs(b, 1000);
    const merged = summarize(mergeEncoded([encode(a), encode(b)]));
    expect(merged.count).toBe(1000);
    expect(merged.p50Ms).toBeCloseTo(10, 0);
    expect(merged.p95Ms).toBeGreaterThan(990);
    expect(summarize(mergeEncoded([])).count).toBe(0);
  });

  it("counts 5xx, 429, 401 and failed connections as errors and other 4xx as business rejections", () => {
    expect(classifyStatus(200)).toBe("ok");
    expect(classifyStatus(204)).toBe("ok");
    expect(classifyStatus(403)).toBe("rejected");
    expect(classifyStatus(422)).toBe("rejected");
    expect(classifyStatus(429)).toBe("error");
    expect(classifyStatus(401)).toBe("error");
    expect(classifyStatus(503)).toBe("error");
    expect(classifyStatus(0)).toBe("error");
  });

  it("records per operation and by status and code", () => {
    const w = new Window("t");
    w.record("GET /v2/account", 200, 5);
    w.record("POST /v2/orders (limit)", 403, 7, "insufficient_buying_power");
    w.record("POST /v2/orders (limit)", 0, 30_000);
    expect(w.requests).toBe(3);
    expect(w.errors).toBe(1);
    const op = w.op("POST /v2/orders (limit)");
    expect(op.byStatus.get("403 insufficient_buying_power")).toBe(1);
    expect(op.hist.totalCount).toBe(1); // a failed connection has no latency
  });
});

describe("book stream messages", () => {
  it("reads type, seq and ts without parsing the frame", () => {
    expect(
      scanBookMessage('{"type":"delta","symbol":"ACME","seq":43,"bids":[["101.25","0"]],"asks":[]}'),
    ).toEqual({
      type: "delta",
      seq: 43,
      ts: -1,
    });
    expect(
      scanBookMessage(
        '{"type":"trade","symbol":"ACME","seq":44,"price":"101.30","qty":"100","taker_side":"buy","ts":1795718724864}',
      ),
    ).toEqual({ type: "trade", seq: 44, ts: 1795718724864 });
    expect(
      scanBookMessage(
        '{"type":"snapshot","symbol":"ACME","seq":0,"depth":10,"halted":false,"bids":[],"asks":[]}',
      ).type,
    ).toBe("snapshot");
    expect(
      scanBookFrame(
        '[{"type":"trade","symbol":"ACME","seq":44,"price":"101.30","qty":"100","taker_side":"buy","ts":17},' +
          '{"type":"delta","symbol":"ACME","seq":45,"bids":[["101.25","0"]],"asks":[]}]',
      ),
    ).toEqual([
      { type: "trade", seq: 44, ts: 17 },
      { type: "delta", seq: 45, ts: -1 },
    ]);
    expect(scanBookFrame('{"type":"delta","symbol":"ACME","seq":3,"bids":[],"asks":[]}')).toEqual([
      { type: "delta", seq: 3, ts: -1 },
    ]);
    expect(scanBookMessage('{"type":"pong"}').type).toBe("other");
    expect(scanBookMessage('{"type":"status","symbol":"ACME","halted":true}').type).toBe("other");
  });

  it("counts a gap and the missing messages, then waits for the next snapshot", () => {
    const t = new SeqTracker();
    expect(t.onSequenced(5)).toBe("ignored"); // before the first snapshot
    t.onSnapshot(10);
    expect(t.onSequenced(11)).toBe("ok");
    expect(t.onSequenced(11)).toBe("stale");
    expect(t.onSequenced(15)).toBe("gap");
    expect(t.gaps).toBe(1);
    expect(t.missing).toBe(3);
    expect(t.onSequenced(16)).toBe("ignored"); // resyncing
    t.onSnapshot(16);
    expect(t.onSequenced(17)).toBe("ok");
    expect(t.stale).toBe(1);
  });
});

describe("end-of-run checks", () => {
  it("finds a balanced ledger balanced, to the micro-dollar", () => {
    const account = { starting_cash: "120000", realized_pl: "-12.5", fees: "0.35", cash: "99000.15" };
    // 120000 − 12.5 − 0.35 = 119987.15 = 99000.15 + 20987
    expect(ledgerDifference(account, [{ symbol: "ACME", qty: "200", cost_basis: "20987" }])).toBe(0);
    expect(ledgerDifference(account, [{ symbol: "ACME", qty: "200", cost_basis: "20986.999999" }])).toBe(1);
  });

  it("accepts an execution seen once or as one buy and one sell, and flags anything else", () => {
    const fill = (trader: number, side: string, qtyLots = 5, priceTicks = 10_000) => ({
      trader,
      side,
      qtyLots,
      priceTicks,
    });
    const fills = new Map([
      ["ACME-1", [fill(1, "buy")]],
      ["ACME-2", [fill(1, "buy"), fill(2, "sell")]],
      ["ACME-3", [fill(1, "buy"), fill(2, "buy")]],
      ["ACME-4", [fill(1, "buy"), fill(2, "sell", 4)]],
      ["ACME-5", [fill(1, "buy"), fill(2, "sell"), fill(3, "sell")]],
    ]);
    expect(crossTraderConflicts(fills)).toEqual(["ACME-3", "ACME-4", "ACME-5"]);
  });
});

describe("options", () => {
  it("defaults to a modest run against a throw-away server", () => {
    const o = parseOptions([]);
    if (o === "help") throw new Error("unexpected help");
    expect(o.users).toBe(100);
    expect(o.duration).toBe(60);
    expect(o.server).toBe("miniflare");
    expect(o.target).toBeNull();
    expect(o.maxRequests).toBe(100 * 60 * 2 + 10_000);
  });

  it("bounds users, duration and requests", () => {
    expect(() => parseOptions(["--users", "50000"])).toThrow();
    expect(() => parseOptions(["--duration", "100000"])).toThrow();
    expect(() => parseOptions(["--max-requests", "99999999"])).toThrow();
  });

  it("streams every book update by default, and takes only the book's intervals or 0", () => {
    const defaults = parseOptions([]);
    if (defaults === "help") throw new Error("unexpected help");
    expect(defaults.bookIntervalMs).toBe(0);
    for (const [arg, ms] of [
      ["0", 0],
      ["100", 100],
      ["250", 250],
      ["1000", 1000],
    ] as const) {
      const o = parseOptions(["--book-interval", arg]);
      if (o === "help") throw new Error("unexpected help");
      expect(o.bookIntervalMs).toBe(ms);
    }
    for (const bad of ["50", "300", "-1", "x"])
      expect(() => parseOptions(["--book-interval", bad])).toThrow();
  });

  it("takes the peak of a ramp as the user count", () => {
    const o = parseOptions(["--ramp", "100,300,200"]);
    if (o === "help") throw new Error("unexpected help");
    expect(o.users).toBe(300);
    expect(o.ramp).toEqual([100, 300, 200]);
  });

  it("overrides single action weights and refuses unknown ones", () => {
    expect(parseMix("account=0,cancel=3")).toEqual({ ...DEFAULT_MIX, account: 0, cancel: 3 });
    expect(() => parseMix("teleport=1")).toThrow(/unknown action/);
  });

  it("only lets a run target this machine", () => {
    expect(assertLocalTarget("http://127.0.0.1:8787").port).toBe("8787");
    expect(assertLocalTarget("http://localhost:8787").hostname).toBe("localhost");
    expect(() => assertLocalTarget("http://10.0.0.5:8787")).toThrow(/refusing/);
    expect(() => assertLocalTarget("https://prepx.example.com")).toThrow(/refusing/);
  });
});

describe("server access log", () => {
  it("groups paths with ids into one route", () => {
    expect(routeOf("DELETE", "/v2/orders/61e69015-8549-4bfd-b9c3-01e75843f47d")).toBe(
      "DELETE /v2/orders/{id}",
    );
    expect(routeOf("GET", "/v2/account")).toBe("GET /v2/account");
  });
});

describe("worker CPU profiles", () => {
  it("maps bundle positions back to the repository's sources", () => {
    // line 0: col 0 → a.ts:1, col 10 → b.ts:5; line 1: col 4 → b.ts:7
    const map = new SourceMap({
      sources: ["../../workers/a.ts", "../../durable-objects/b.ts"],
      mappings: "AAAA,UCIA;IAEA",
    });
    expect(map.lookup(0, 3)).toEqual({ file: "workers/a.ts", line: 1 });
    expect(map.lookup(0, 12)).toEqual({ file: "durable-objects/b.ts", line: 5 });
    expect(map.lookup(1, 9)).toEqual({ file: "durable-objects/b.ts", line: 7 });
    expect(map.lookup(7, 0)).toBeNull();
  });

  it("sums self time by function and file and leaves idle time out of the shares", () => {
    const s = summarizeProfile({
      startTime: 0,
      endTime: 1_000_000,
      nodes: [
        { id: 1, callFrame: { functionName: "(idle)", url: "", lineNumber: -1 }, hitCount: 50 },
        {
          id: 2,
          callFrame: { functionName: "saveAccount", url: "file:///x/workers/a.ts", lineNumber: 9 },
          hitCount: 30,
        },
        {
          id: 3,
          callFrame: { functionName: "broadcast", url: "file:///x/durable-objects/b.ts", lineNumber: 1 },
          hitCount: 20,
        },
      ],
    });
    expect(s.idleShare).toBe(0.5);
    expect(s.topFunctions[0]).toMatchObject({ name: "saveAccount", file: "workers/a.ts:10", share: 60 });
    expect(s.topFiles.map((f) => f.file)).toEqual(["workers/a.ts", "durable-objects/b.ts"]);
  });

  it("charges native work to the component that called it", () => {
    expect(areaOf("durable-objects/user-session.ts")).toMatch(/UserSession/);
    expect(areaOf("shared/engine/engine.ts")).toMatch(/OrderBook/);
    expect(areaOf("durable-objects/sql.ts")).toBeNull();
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
    const s = summarizeProfile({
      startTime: 0,
      endTime: 1_000,
      nodes: [
        { id: 1, callFrame: frame("(root)", ""), children: [2, 5] },
        { id: 2, callFrame: frame("placeOrder", "file:///x/durable-objects/user-session.ts"), children: [3] },
        { id: 3, callFrame: frame("run", "file:///x/durable-objects/sql.ts"), children: [4], hitCount: 1 },
        { id: 4, callFrame: frame("exec", ""), hitCount: 3 },
        { id: 5, callFrame: frame("(garbage collector)", ""), hitCount: 1 },
      ],
    });
    expect(s.byArea[0]).toMatchObject({ area: expect.stringMatching(/UserSession/), share: 80 });
    expect(s.byArea[1]?.area).toMatch(/runtime/);
  });
});

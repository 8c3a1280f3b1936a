import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildApp } from "../workers/app.ts";
import { L2Replica, messagesOfFrame, type ServerMessage } from "./order-book/protocol.ts";
import { account, freshBook, limit } from "./order-book/test-helpers.ts";
import { workload } from "./order-book/workload.ts";
import type { OrderBook } from "./order-book.ts";

/** A market-data client over the real edge route, collecting every message it receives. */
async function subscribe(symbol: string, query = "") {
  const res = await exports.default.fetch(
    new Request(`http://prepx.test/v2/stream/book/${symbol}${query}`, { headers: { Upgrade: "websocket" } }),
  );
  expect(res.status).toBe(101);
  const ws = res.webSocket as WebSocket;
  ws.accept();
  const messages: ServerMessage[] = [];
  const frames: string[] = [];
  const waiters: { test: () => boolean; resolve: () => void }[] = [];
  let closed: { code: number; reason: string } | null = null;
  const check = () => {
    for (const w of [...waiters]) {
      if (w.test()) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  ws.addEventListener("message", (e) => {
    frames.push(e.data as string);
    messages.push(...messagesOfFrame(e.data as string));
    check();
  });
  ws.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
    check();
  });
  /** Resolves once `test()` holds (checked on every message and on close), or fails after 3 s. */
  const until = (test: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (test()) return resolve();
      const timer = setTimeout(
        () =>
          reject(
            new Error(`timed out waiting for ${what}: ${JSON.stringify(messages)} ${JSON.stringify(closed)}`),
          ),
        3000,
      );
      waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  const lastSeq = () => {
    let seq = -1;
    for (const m of messages) if ("seq" in m) seq = Math.max(seq, m.seq);
    return seq;
  };
  return { ws, messages, frames, until, lastSeq, closed: () => closed };
}

describe("market-data stream", () => {
  it("lets two subscribers rebuild the same book as the object's own snapshot from snapshot + deltas", async () => {
    const { symbol, stub } = await freshBook();
    const flow = workload({ seed: 42, count: 600, idPrefix: "w", centre: 10_000 });
    // Some history before anyone subscribes, so the first snapshot is not empty.
    await stub.submitMany(flow.slice(0, 100));
    const alice = await subscribe(symbol);
    await alice.until(() => alice.messages.length > 0, "alice's snapshot");
    for (let i = 100; i < 300; i += 25) await stub.submitMany(flow.slice(i, i + 25));
    const bob = await subscribe(symbol, "?depth=1000");
    for (const cmd of flow.slice(300, 400)) await stub.submit(cmd);
    for (let i = 400; i < 600; i += 50) await stub.submitMany(flow.slice(i, i + 50));

    const final = await stub.snapshot(1000);
    for (const client of [alice, bob]) {
      await client.until(() => client.lastSeq() >= final.seq, "the last message");
      expect(client.messages[0]?.type).toBe("snapshot");
      const replica = new L2Replica();
      for (const m of client.messages) expect(replica.apply(m)).not.toBe("gap");
      expect(replica.seq).toBe(final.seq);
      expect(replica.bids()).toEqual(final.bids);
      expect(replica.asks()).toEqual(final.asks);
    }
    // Same stream for everyone: messages with the same seq are identical.
    const bySeq = new Map(
      alice.messages.filter((m) => "seq" in m).map((m) => [(m as { seq: number }).seq, m]),
    );
    for (const m of bob.messages) {
      if (m.type === "delta" || m.type === "trade") expect(m).toEqual(bySeq.get(m.seq));
    }
    // The default snapshot depth is 50 levels; this flow never has more than 11 per side.
    expect(alice.messages[0]).toMatchObject({ type: "snapshot", depth: 50 });
    alice.ws.close(1000, "done");
    bob.ws.close(1000, "done");
  });

  it("numbers deltas and trades consecutively and carries the last seq in a snapshot", async () => {
    const { symbol, stub } = await freshBook();
    const client = await subscribe(symbol);
    await client.until(() => client.messages.length === 1, "snapshot");
    expect(client.messages[0]).toMatchObject({ type: "snapshot", symbol, seq: 0, bids: [], asks: [] });
    const [maker, taker] = [account("m"), account("t")];
    await stub.submit(limit("s1", maker, "sell", 300, 10_125));
    await stub.submit(limit("s2", maker, "sell", 500, 10_130));
    // One command, two fills and two changed levels: two trades, then one coalesced delta.
    await stub.submit(limit("b1", taker, "buy", 400, 10_130));
    await client.until(() => client.lastSeq() === 5, "seq 5");
    expect(client.messages.slice(1)).toEqual([
      { type: "delta", symbol, seq: 1, bids: [], asks: [["101.25", "300"]] },
      { type: "delta", symbol, seq: 2, bids: [], asks: [["101.30", "500"]] },
      expect.objectContaining({ type: "trade", seq: 3, price: "101.25", qty: "300", taker_side: "buy" }),
      expect.objectContaining({ type: "trade", seq: 4, price: "101.30", qty: "100", taker_side: "buy" }),
      {
        type: "delta",
        symbol,
        seq: 5,
        bids: [],
        asks: [
          ["101.25", "0"],
          ["101.30", "400"],
        ],
      },
    ]);
    const trade = client.messages[3];
    expect(trade?.type === "trade" && typeof trade.ts).toBe("number");
    // A reject changes nothing on the book and sends nothing.
    await stub.submit(limit("bad", taker, "buy", 0, 10_000));
    const snapshot = await stub.snapshot();
    expect(snapshot).toMatchObject({ seq: 5, asks: [["101.30", "400"]], bids: [] });
    client.ws.close(1000);
  });

  it("sends a quiet book's message at once and a busy book's messages together, one array frame per window", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.limits.coalesceMs = 1_000;
    });
    const client = await subscribe(symbol);
    await client.until(() => client.messages.length === 1, "snapshot");
    const trader = account("t");
    await stub.submit(limit("q1", trader, "buy", 10, 9_990));
    // The first message after a quiet window is not held back.
    await client.until(() => client.lastSeq() === 1, "seq 1");
    expect(client.frames).toHaveLength(2);
    // Three more commits inside the window: held, then sent as one frame, every message kept in order.
    for (let i = 2; i <= 4; i++) await stub.submit(limit(`q${i}`, trader, "buy", 10, 9_990 - i));
    await client.until(() => client.lastSeq() === 4, "seq 4");
    expect(client.frames).toHaveLength(3);
    const last = JSON.parse(client.frames[2] as string) as ServerMessage[];
    expect(last.map((m) => ("seq" in m ? m.seq : null))).toEqual([2, 3, 4]);
    // A subscriber joining meanwhile never sees a message older than its snapshot after it.
    await stub.submit(limit("q5", trader, "buy", 10, 9_900));
    const late = await subscribe(symbol);
    await late.until(() => late.messages.length >= 1, "late snapshot");
    expect(late.messages[0]).toMatchObject({ type: "snapshot", seq: 5 });
    await client.until(() => client.lastSeq() === 5, "seq 5 flushed before the late snapshot");
    client.ws.close(1000);
    late.ws.close(1000);
  });

  it("gathers an interval subscriber's messages into one frame per interval: same seqs, nothing dropped", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.limits.coalesceMs = 0;
    });
    const live = await subscribe(symbol);
    const slow = await subscribe(symbol, "?interval_ms=1000");
    await live.until(() => live.messages.length === 1, "live snapshot");
    await slow.until(() => slow.messages.length === 1, "slow snapshot");
    const trader = account("t");
    // The first message after a quiet interval goes at once; the next three wait for the interval.
    for (let i = 1; i <= 4; i++) await stub.submit(limit(`v${i}`, trader, "buy", 10, 9_990 - i));
    await live.until(() => live.lastSeq() === 4, "live seq 4");
    await slow.until(() => slow.lastSeq() === 4, "slow seq 4");
    expect(live.frames).toHaveLength(5);
    expect(slow.frames).toHaveLength(3);
    const held = JSON.parse(slow.frames[2] as string) as ServerMessage[];
    expect(held.map((m) => ("seq" in m ? m.seq : null))).toEqual([2, 3, 4]);
    expect(slow.messages).toEqual(live.messages);
    const replica = new L2Replica();
    for (const m of slow.messages) expect(replica.apply(m)).not.toBe("gap");
    const final = await stub.snapshot();
    expect(replica.bids()).toEqual(final.bids);
    live.ws.close(1000);
    slow.ws.close(1000);
  });

  it("sends an interval's waiting messages before a new subscriber's snapshot", async () => {
    const { symbol, stub } = await freshBook();
    const first = await subscribe(symbol, "?interval_ms=1000");
    await first.until(() => first.messages.length === 1, "snapshot");
    const trader = account("t");
    await stub.submit(limit("w1", trader, "buy", 10, 9_990));
    await first.until(() => first.lastSeq() === 1, "seq 1, sent at once");
    // Held for up to a second…
    await stub.submit(limit("w2", trader, "buy", 10, 9_980));
    // …unless someone subscribes: the waiting messages go out first, so the newcomer's snapshot covers
    // them and nothing older than it follows it.
    const second = await subscribe(symbol, "?interval_ms=1000");
    await second.until(() => second.messages.length === 1, "second snapshot");
    expect(second.messages[0]).toMatchObject({ type: "snapshot", seq: 2 });
    expect(first.lastSeq()).toBe(2);
    await stub.submit(limit("w3", trader, "buy", 10, 9_970));
    await second.until(() => second.lastSeq() === 3, "seq 3");
    expect(second.messages.slice(1).map((m) => ("seq" in m ? m.seq : null))).toEqual([3]);
    first.ws.close(1000);
    second.ws.close(1000);
  });

  it("detects a gap and recovers with a fresh snapshot on subscribe", async () => {
    const { symbol, stub } = await freshBook();
    const client = await subscribe(symbol, "?depth=5");
    const trader = account("t");
    for (let i = 0; i < 4; i++) await stub.submit(limit(`g${i}`, trader, "buy", 10, 9_990 + i));
    await client.until(() => client.lastSeq() === 4, "four deltas");

    const replica = new L2Replica();
    const [snapshot, d1, d2, d3, d4] = client.messages as ServerMessage[];
    expect(replica.apply(snapshot as ServerMessage)).toBe("applied");
    expect(replica.apply(d1 as ServerMessage)).toBe("applied");
    // d2 is "lost": d3 reveals the gap, and the replica refuses more deltas until a new snapshot.
    expect(replica.apply(d3 as ServerMessage)).toBe("gap");
    expect(replica.synced).toBe(false);
    expect(replica.apply(d4 as ServerMessage)).toBe("ignored");
    expect(d2?.type).toBe("delta");

    client.ws.send(JSON.stringify({ type: "subscribe", depth: 3 }));
    await client.until(() => client.messages.length === 6, "fresh snapshot");
    const fresh = client.messages[5] as ServerMessage;
    expect(fresh).toMatchObject({ type: "snapshot", seq: 4, depth: 3 });
    expect(replica.apply(fresh)).toBe("applied");
    expect(replica.synced).toBe(true);
    expect(replica.bids()).toEqual([
      ["99.93", "10"],
      ["99.92", "10"],
      ["99.91", "10"],
    ]);
    await stub.submit({ kind: "cancel", orderId: "g3" });
    await client.until(() => client.lastSeq() === 5, "the next delta");
    expect(replica.apply(client.messages[6] as ServerMessage)).toBe("applied");
    expect(replica.bids()[0]).toEqual(["99.92", "10"]);
    client.ws.close(1000);
  });

  it("answers bad frames with an error, and closes abusive or oversized clients with a reason", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.limits.maxBadFrames = 4;
      book.limits.snapshotsPerWindow = 3;
    });
    const client = await subscribe(symbol);
    client.ws.send("not json");
    client.ws.send(JSON.stringify({ type: "dance" }));
    client.ws.send(JSON.stringify({ type: "subscribe", depth: 0 }));
    client.ws.send(new Uint8Array([1, 2, 3]));
    await client.until(() => client.messages.length === 5, "four errors");
    expect(client.messages.slice(1).map((m) => (m.type === "error" ? m.code : m.type))).toEqual([
      "bad_frame",
      "unknown_type",
      "invalid_depth",
      "binary_not_supported",
    ]);
    // The connection is still usable: ping (auto-response) and pong.
    client.ws.send('{"type":"ping"}');
    client.ws.send('{ "type": "ping" }');
    await client.until(() => client.messages.filter((m) => m.type === "pong").length === 2, "two pongs");
    // One bad frame too many.
    client.ws.send("[]");
    await client.until(() => client.closed() !== null, "close");
    expect(client.closed()).toEqual({ code: 1008, reason: "too many bad frames" });

    const big = await subscribe(symbol);
    big.ws.send(JSON.stringify({ type: "subscribe", pad: "x".repeat(5000) }));
    await big.until(() => big.closed() !== null, "close");
    expect(big.closed()).toEqual({ code: 1009, reason: "frame larger than 4096 bytes" });

    const greedy = await subscribe(symbol);
    for (let i = 0; i < 3; i++) greedy.ws.send('{"type":"subscribe"}');
    await greedy.until(() => greedy.closed() !== null, "close");
    expect(greedy.messages.filter((m) => m.type === "snapshot")).toHaveLength(3);
    expect(greedy.closed()).toEqual({ code: 1008, reason: "too many snapshot requests" });
  });

  it("keeps sockets across hibernation: the seq continues where it was", async () => {
    const { symbol, stub } = await freshBook();
    const client = await subscribe(symbol, "?depth=7");
    // Its update interval is a tag of the socket, which hibernation keeps as well.
    const slow = await subscribe(symbol, "?interval_ms=100");
    const trader = account("t");
    await stub.submit(limit("h1", trader, "sell", 5, 10_050));
    await client.until(() => client.lastSeq() === 1, "first delta");
    await slow.until(() => slow.lastSeq() === 1, "first delta, interval socket");

    await evictDurableObject(stub, { webSockets: "hibernate" });
    await stub.submit(limit("h2", trader, "sell", 5, 10_060));
    await client.until(() => client.lastSeq() === 2, "delta after the wake");
    await slow.until(() => slow.lastSeq() === 2, "delta after the wake, interval socket");
    expect(client.messages.at(-1)).toMatchObject({ type: "delta", seq: 2, asks: [["100.60", "5"]] });
    expect(slow.messages.at(-1)).toEqual(client.messages.at(-1));
    slow.ws.close(1000);
    // The socket's attachment survived: a subscribe without depth keeps ?depth=7.
    client.ws.send('{"type":"subscribe"}');
    await client.until(() => client.messages.at(-1)?.type === "snapshot", "snapshot");
    expect(client.messages.at(-1)).toMatchObject({ type: "snapshot", depth: 7, seq: 2 });
    await slow.until(() => slow.closed() !== null, "interval socket closed");
    expect((await stub.status()).subscribers).toBe(1);
    client.ws.close(1000);
  });

  it("tells subscribers when trading halts and resumes", async () => {
    const { symbol, stub } = await freshBook();
    const client = await subscribe(symbol);
    await stub.halt();
    await stub.resume();
    await client.until(() => client.messages.length === 3, "two status messages");
    expect(client.messages.slice(1)).toEqual([
      { type: "status", symbol, halted: true },
      { type: "status", symbol, halted: false },
    ]);
    client.ws.close(1000);
  });

  it("refuses requests that are not upgrades, unknown symbols and bad depths with JSON errors", async () => {
    const plain = await exports.default.fetch(new Request("http://prepx.test/v2/stream/book/ACME"));
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as { code: string }).code).toBe("upgrade_required");
    const upgrade = { headers: { Upgrade: "websocket" } };
    const unknown = await exports.default.fetch(
      new Request("http://prepx.test/v2/stream/book/ZZZZ", upgrade),
    );
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe("unknown_symbol");
    const badDepth = await exports.default.fetch(
      new Request("http://prepx.test/v2/stream/book/ACME?depth=5000", upgrade),
    );
    expect(badDepth.status).toBe(422);
    for (const interval of ["300", "0", "-100", "1e3", "abc"]) {
      const badInterval = await exports.default.fetch(
        new Request(`http://prepx.test/v2/stream/book/ACME?interval_ms=${interval}`, upgrade),
      );
      expect(badInterval.status).toBe(422);
      expect(((await badInterval.json()) as { code: string }).code).toBeTypeOf("string");
    }
    // The book checks the interval too (its own callers reach it without the edge's schema).
    const direct = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("ACME")).fetch(
      new Request("http://book/?interval_ms=300", upgrade),
    );
    expect(direct.status).toBe(422);
    expect(await direct.json()).toMatchObject({ code: "invalid_interval" });
    const badSymbol = await exports.default.fetch(
      new Request("http://prepx.test/v2/stream/book/acme!", upgrade),
    );
    expect(badSymbol.status).toBe(422);
  });

  it("serves the development-only book routes in development and answers 404 elsewhere", async () => {
    const { symbol } = await freshBook();
    const app = buildApp();
    const path = `/v2/dev/book/${symbol}/status`;
    const dev = await app.request(path, {}, { ...env, ENVIRONMENT: "development" });
    expect(dev.status).toBe(200);
    expect(((await dev.json()) as { symbol: string }).symbol).toBe(symbol);
    for (const environment of ["production", "staging", ""]) {
      const res = await app.request(path, {}, { ...env, ENVIRONMENT: environment });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe("not_found");
    }
    // The stream itself is public in every environment.
    const stream = await app.request("/v2/stream/book/ACME", {}, { ...env, ENVIRONMENT: "production" });
    expect(stream.status).toBe(426);
  });
});

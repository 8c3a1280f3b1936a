// The development-only book routes that `npm run bench:book` drives, through the real HTTP surface: a fresh
// book, orders one by one and in a batch (whose packed answer the route unpacks), bad input refused with
// a JSON error, and a small benchmark run with its outbox drained.
import { describe, expect, it } from "vitest";
import { api } from "./client.ts";

/** A symbol no other test lists: a fresh book per run. */
const SYMBOL = `DEV${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
const base = `/v2/dev/book/${SYMBOL}`;

type Event = { type: string; orderId?: string; reason?: string };

describe("development book routes", () => {
  it("list a fresh book, take orders one by one and in a batch, and refuse what is not a command", async () => {
    expect((await api("POST", `${base}/configure`, { body: { like: "ACME" } })).status).toBe(200);
    const one = await api<Event[]>("POST", `${base}/orders`, {
      body: {
        kind: "place",
        orderId: "d1",
        account: "a",
        side: "buy",
        type: "limit",
        tif: "gtc",
        qty: 2,
        limitPrice: 9_990,
      },
    });
    expect(one.status).toBe(200);
    expect(one.body.map((e) => e.type)).toEqual(["accepted", "book"]);

    const batch = await api<Event[][]>("POST", `${base}/orders`, {
      body: [
        {
          kind: "place",
          orderId: "d2",
          account: "b",
          side: "sell",
          type: "limit",
          tif: "gtc",
          qty: 1,
          limitPrice: 9_990,
        },
        { kind: "cancel", orderId: "d1", account: "a" },
        { kind: "cancel", orderId: "missing" },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.map((list) => list.map((e) => e.type))).toEqual([
      ["accepted", "fill", "book"],
      ["canceled", "book"],
      ["rejected"],
    ]);
    expect(batch.body[2]?.[0]?.reason).toBe("unknown_order");

    for (const body of [[42], { kind: "halt" }, [{ kind: "place" }, "x"]]) {
      const bad = await api<{ code: string; message: string }>("POST", `${base}/orders`, { body });
      expect(bad.status).toBe(422);
      expect(bad.body.code).toBe("invalid_input");
    }
    const malformed = await api<{ code: string }>("POST", `${base}/orders`, { body: "[{" });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe("invalid_json");
  });

  it("runs a small benchmark in batches and drains the outbox behind it", async () => {
    const run = await api<{ orders: number; rpcs: number; events: number; ordersPerSec: number }>(
      "POST",
      `${base}/bench`,
      { body: { count: 500, batch: 100, concurrency: 2, idPrefix: "bench" } },
    );
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ orders: 500, rpcs: 5 });
    // Every order answers at least one event (accepted or rejected), each unpacked by the route.
    expect(run.body.events).toBeGreaterThanOrEqual(500);
    expect(run.body.ordersPerSec).toBeGreaterThan(0);
    const drained = await api<{ pending: number }>("POST", `${base}/drained`, { body: {} });
    expect(drained.status).toBe(200);
    expect(drained.body.pending).toBe(0);
  });
});

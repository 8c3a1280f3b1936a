// Notifications end to end, as a user gets them: through the real trading API, the trade-events
// and notifications queues of `wrangler dev`, Postgres and Redis of the local stack, the user's WebSocket,
// Web Push to a local push service (test/support/provider-stub.ts) and the development sink at /dev/outbox.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { base64UrlEncode, decryptWebPush, verifyVapid } from "../shared/notifications/web-push.ts";
import {
  adminToken as adminLogin,
  api,
  freshIp,
  type JsonSocket,
  newTrader,
  openSocket,
  PASSWORD,
  type Trader,
} from "./client.ts";
import { query, stackEnv } from "./support/notifications.ts";
import { type ProviderStub, startProviderStub } from "./support/provider-stub.ts";

// This file trades ACME only (no other test file does) and cancels what it leaves open.
const SYMBOL = "ACME";

type Alert = {
  id: string;
  status: string;
  trigger_count: number;
  armed: boolean;
  last_trigger_price: string | null;
};
type Notification = {
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, string>;
  deliveries: { channel: string; status: string; reason: string | null; attempts: number }[];
};
type OutboxMessage = {
  notification_id: string;
  channel: string;
  recipient: string;
  subject: string | null;
  body: string;
};

let adminToken: string;
let alice: Trader;
let bob: Trader;
let aliceStream: JsonSocket;
let stub: ProviderStub;

const limit = (side: "buy" | "sell", qty: string, price: string) => ({
  symbol: SYMBOL,
  side,
  type: "limit",
  time_in_force: "gtc",
  qty,
  limit_price: price,
});

/** Bob sells `qty` at `price`, Alice takes it: one trade print at `price`. */
async function trade(price: string, qty = "1") {
  const sell = await bob.call("POST", "/v2/orders", limit("sell", qty, price));
  expect(sell.status).toBe(200);
  const buy = await alice.call<{ status: string; filled_avg_price: string }>(
    "POST",
    "/v2/orders",
    limit("buy", qty, price),
  );
  expect(buy.body).toMatchObject({ status: "filled", filled_avg_price: price });
}

async function notificationsOf(t: Trader, type?: string): Promise<Notification[]> {
  const res = await t.call<{ notifications: Notification[] }>(
    "GET",
    `/v1/notifications?limit=200${type ? `&type=${type}` : ""}`,
  );
  expect(res.status).toBe(200);
  return res.body.notifications;
}

async function outbox(params: Record<string, string>): Promise<OutboxMessage[]> {
  const res = await api<{ messages: OutboxMessage[] }>(
    "GET",
    `/dev/outbox.json?${new URLSearchParams(params)}`,
  );
  expect(res.status).toBe(200);
  return res.body.messages;
}

const waitFor = <T>(fn: () => Promise<T>, timeout = 20_000) => vi.waitFor(fn, { timeout, interval: 250 });

beforeAll(async () => {
  adminToken = await adminLogin();
  [alice, bob] = await Promise.all([newTrader("alice"), newTrader("bob")]);
  const grant = await api("POST", `/admin/users/${bob.id}/grants`, {
    token: adminToken,
    ip: freshIp(),
    body: { symbol: SYMBOL, qty: "100", price: "100.00" },
  });
  expect(grant.status).toBe(200);
  aliceStream = await openSocket("/stream", { Authorization: `Bearer ${alice.token}` });
  aliceStream.send({ action: "listen", data: { streams: ["trade_updates", "notifications"] } });
  const listening = await aliceStream.next((m) => m.stream === "listening");
  expect(listening.data).toEqual({ streams: ["trade_updates", "notifications"] });
  stub = await startProviderStub(() => ({ status: 201, body: {} }));
});

afterAll(async () => {
  await aliceStream?.close();
  await stub?.close();
  await Promise.all([alice?.call("DELETE", "/v2/orders"), bob?.call("DELETE", "/v2/orders")]);
  for (const t of [alice, bob]) {
    const alerts = await t?.call<{ alerts: Alert[] }>("GET", "/v1/alerts");
    for (const a of alerts?.body.alerts ?? []) await t.call("DELETE", `/v1/alerts/${a.id}`);
  }
});

describe("price alerts", { timeout: 90_000 }, () => {
  it("trigger when trades cross them: a one-time alert once, a repeating alert on every crossing", async () => {
    const once = await alice.call<Alert>("POST", "/v1/alerts", {
      symbol: "acme",
      direction: "above",
      price: "101",
      frequency: "once",
    });
    expect(once.status).toBe(201);
    expect(once.body).toMatchObject({
      symbol: SYMBOL,
      price: "101.00",
      status: "active",
      armed: true,
      trigger_count: 0,
    });
    const repeating = await alice.call<Alert>("POST", "/v1/alerts", {
      symbol: SYMBOL,
      direction: "above",
      price: "101.00",
      frequency: "repeating",
    });
    expect(repeating.status).toBe(201);

    await trade("100.50"); // below: nothing
    await trade("101.50"); // crosses 101: both fire
    await waitFor(async () => {
      const a = await alice.call<Alert>("GET", `/v1/alerts/${once.body.id}`);
      expect(a.body).toMatchObject({ status: "triggered", trigger_count: 1, last_trigger_price: "101.50" });
      const r = await alice.call<Alert>("GET", `/v1/alerts/${repeating.body.id}`);
      expect(r.body).toMatchObject({ status: "active", armed: false, trigger_count: 1 });
    });
    await trade("100.80"); // back under: the repeating alert re-arms
    await trade("101.20"); // crosses again: only the repeating alert fires
    await waitFor(async () => {
      const r = await alice.call<Alert>("GET", `/v1/alerts/${repeating.body.id}`);
      expect(r.body).toMatchObject({ trigger_count: 2, last_trigger_price: "101.20" });
    });
    expect((await alice.call<Alert>("GET", `/v1/alerts/${once.body.id}`)).body.trigger_count).toBe(1);

    // In-app, live on the socket, and in the history; by email through the sink (alerts email by default).
    await waitFor(async () => {
      const alerts = await notificationsOf(alice, "price_alert");
      expect(alerts.map((n) => [n.data.alert_id, n.data.price]).sort()).toEqual(
        [
          [once.body.id, "101.50"],
          [repeating.body.id, "101.20"],
          [repeating.body.id, "101.50"],
        ].sort(),
      );
      for (const n of alerts) {
        expect(n.deliveries).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ channel: "in_app", status: "sent" }),
            expect.objectContaining({ channel: "email", status: "sent" }),
          ]),
        );
      }
    });
    const live = await aliceStream.next(
      (m) => m.stream === "notifications" && (m.data as { type?: string }).type === "price_alert",
    );
    expect(live.data).toMatchObject({ title: "ACME is above 101.00", data: { symbol: SYMBOL } });
    const emails = await outbox({ user_id: alice.id, channel: "email" });
    const alertEmails = emails.filter((m) => m.subject === "ACME is above 101.00");
    expect(alertEmails).toHaveLength(3);
    expect(alertEmails[0]?.recipient).toBe(alice.email);
  });

  it("respect an opt-out: no email for price alerts, still in-app", async () => {
    const put = await alice.call("PUT", "/v1/notifications/preferences", {
      types: { price_alert: { email: false } },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      types: { price_alert: { email: false, in_app: true }, security_login: { email: true } },
    });
    const alert = await alice.call<Alert>("POST", "/v1/alerts", {
      symbol: SYMBOL,
      direction: "below",
      price: "99.00",
    });
    expect(alert.status).toBe(201);
    await trade("98.90");
    const fired = await waitFor(async () => {
      const n = (await notificationsOf(alice, "price_alert")).find((x) => x.data.alert_id === alert.body.id);
      expect(n?.deliveries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ channel: "in_app", status: "sent" }),
          expect.objectContaining({ channel: "email", status: "skipped", reason: "opted_out" }),
        ]),
      );
      return n as Notification;
    });
    expect(fired.title).toBe("ACME is below 99.00");
    expect(await outbox({ notification_id: fired.id })).toEqual([]);
  });
});

describe("order notifications", { timeout: 60_000 }, () => {
  it("reach the user's socket on the notifications stream, never an Alpaca-style trade_updates socket", async () => {
    const plain = await openSocket("/stream", { Authorization: `Bearer ${bob.token}` });
    plain.send({ action: "listen", data: { streams: ["trade_updates"] } });
    await plain.next((m) => m.stream === "listening");
    const bobStream = await openSocket("/stream", { Authorization: `Bearer ${bob.token}` });
    bobStream.send({ action: "listen", data: { streams: ["notifications"] } });
    await bobStream.next((m) => m.stream === "listening");

    const sell = await bob.call<{ id: string }>("POST", "/v2/orders", limit("sell", "4", "100.40"));
    await alice.call("POST", "/v2/orders", limit("buy", "3", "100.40"));
    const partial = await bobStream.next(
      (m) => (m.data as { type?: string }).type === "order_partially_filled",
      20_000,
    );
    expect(partial.data).toMatchObject({
      title: "Order partially filled: ACME",
      body: "3 of 4 ACME of your sell order filled so far, at an average price of 100.40.",
      data: { order_id: sell.body.id, filled_qty: "3" },
    });
    expect((await bob.call("DELETE", `/v2/orders/${sell.body.id}`)).status).toBe(204);
    const canceled = await bobStream.next(
      (m) => (m.data as { type?: string }).type === "order_canceled",
      20_000,
    );
    expect(canceled.data).toMatchObject({ body: "Your sell order for 4 ACME was canceled with 3 filled." });
    expect(plain.messages.some((m) => m.stream === "notifications")).toBe(false);
    expect(plain.messages.some((m) => m.stream === "trade_updates")).toBe(true);
    await Promise.all([plain.close(), bobStream.close()]);
  });

  it("tell the user when the book rejects an order, with the reason", async () => {
    const far = await alice.call<{ code: string }>("POST", "/v2/orders", limit("buy", "1", "150.00"));
    expect(far.status).toBe(422);
    expect(far.body.code).toBe("price_out_of_band");
    const rejected = await waitFor(async () => {
      const [n] = await notificationsOf(alice, "order_rejected");
      expect(n).toBeDefined();
      return n as Notification;
    });
    expect(rejected).toMatchObject({
      title: "Order rejected: ACME",
      body: "Your buy order for 1 ACME was rejected (price_out_of_band).",
      data: { reason: "price_out_of_band" },
    });
  });

  it("warn once when buying power falls below the user's level", async () => {
    const cy = await newTrader("cy");
    const put = await cy.call("PUT", "/v1/notifications/preferences", {
      buying_power_threshold: "99000",
      language: "es",
    });
    expect(put.body).toMatchObject({ buying_power_threshold: "99000", language: "es" });
    // A resting buy reserves 95 × 20 = 1,900 (+ fees): buying power drops to about 98,100.
    const order = await cy.call<{ id: string }>("POST", "/v2/orders", limit("buy", "20", "95.00"));
    expect(order.status).toBe(200);
    const warning = await waitFor(async () => {
      const [n] = await notificationsOf(cy, "buying_power_low");
      expect(n).toBeDefined();
      return n as Notification;
    });
    expect(warning.title).toBe("Poder de compra bajo");
    expect(warning.body).toMatch(
      /^Tu poder de compra es de 98\.(09\d|100)(,\d+)? USD, por debajo de tu nivel de aviso de 99\.000 USD/,
    );
    await cy.call("POST", "/v2/orders", limit("buy", "1", "95.00")); // still below: no second warning
    await cy.call("DELETE", "/v2/orders");
    await new Promise((r) => setTimeout(r, 2500));
    expect(await notificationsOf(cy, "buying_power_low")).toHaveLength(1);
  });
});

describe("security notifications", { timeout: 60_000 }, () => {
  it("tell the user about a new sign-in and a new API key, in-app and by email", async () => {
    const dot = await newTrader("dot");
    const login = await api("POST", "/v1/auth/login", {
      ip: "198.51.100.23",
      headers: { "user-agent": "PrepX-test/1.0" },
      body: { email: dot.email, password: PASSWORD },
    });
    expect(login.status).toBe(200);
    const key = await dot.call<{ key_id: string }>("POST", "/v1/api-keys", { name: "my bot" });
    expect(key.status).toBe(201);
    const [signIn, apiKey] = await waitFor(async () => {
      const a = await notificationsOf(dot, "security_login");
      const b = await notificationsOf(dot, "security_api_key");
      expect(a).toHaveLength(1);
      expect(b).toHaveLength(1);
      return [a[0], b[0]] as Notification[];
    });
    expect(signIn?.body).toContain("from 198.51.100.23 (PrepX-test/1.0)");
    expect(apiKey?.body).toContain(`"my bot" (${key.body.key_id})`);
    const mails = await waitFor(async () => {
      const m = await outbox({ user_id: dot.id, channel: "email" });
      expect(m).toHaveLength(2);
      return m;
    });
    expect(mails.map((m) => m.subject).sort()).toEqual([
      "New API key created",
      "New sign-in to your account",
    ]);
  });
});

describe("Web Push", { timeout: 90_000 }, () => {
  async function subscribe(t: Trader, endpoint: string) {
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ])) as CryptoKeyPair;
    const ua = {
      publicKey: base64UrlEncode(
        new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer),
      ),
      privateKey: ((await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey).d as string,
      auth: base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
    };
    const res = await t.call("POST", "/v1/notifications/push-subscriptions", {
      endpoint,
      expirationTime: null,
      keys: { p256dh: ua.publicKey, auth: ua.auth },
    });
    expect(res.status).toBe(201);
    return ua;
  }

  it("retries a failing push service with back-off and delivers once, readable only by the subscriber", async () => {
    const eve = await newTrader("eve");
    const endpoint = `${stub.url}/push/${crypto.randomUUID()}`;
    const ua = await subscribe(eve, endpoint);
    const path = new URL(endpoint).pathname;
    stub.fail(path, 2, 503);
    expect((await eve.call("POST", "/v1/api-keys", { name: "push me" })).status).toBe(201);
    await waitFor(async () => {
      expect(stub.to(path).map((r) => r.status)).toEqual([503, 503, 201]);
    });
    const last = stub.to(path)[2] as (typeof stub.requests)[number];
    expect(
      (await verifyVapid(String(last.headers.authorization), stackEnv.VAPID_PUBLIC_KEY as string)).ok,
    ).toBe(true);
    const payload = JSON.parse(new TextDecoder().decode(await decryptWebPush(new Uint8Array(last.body), ua)));
    expect(payload).toMatchObject({ type: "security_api_key", title: "New API key created" });
    const [n] = await waitFor(async () => {
      const list = await notificationsOf(eve, "security_api_key");
      expect(list[0]?.deliveries.find((d) => d.channel === "push")).toMatchObject({
        status: "sent",
        attempts: 3,
      });
      return list;
    });
    expect(n?.deliveries.find((d) => d.channel === "in_app")).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("sends a job whose push service keeps failing to the dead-letter queue and says so in the history", async () => {
    const fin = await newTrader("fin");
    const endpoint = `${stub.url}/down/${crypto.randomUUID()}`;
    await subscribe(fin, endpoint);
    stub.failAlways(new URL(endpoint).pathname, 502);
    expect((await fin.call("POST", "/v1/api-keys", { name: "doomed" })).status).toBe(201);
    const n = await waitFor(async () => {
      const [x] = await notificationsOf(fin, "security_api_key");
      expect(x?.deliveries.find((d) => d.channel === "push")).toMatchObject({ status: "dead", attempts: 6 });
      return x as Notification;
    }, 60_000);
    expect(stub.to(new URL(endpoint).pathname)).toHaveLength(6);
    expect(n.deliveries.find((d) => d.channel === "email")).toMatchObject({ status: "sent" });
    const stored = await query<{ queue: string; reason: string }>(
      stackEnv.DATABASE_URL as string,
      "SELECT queue, reason FROM dead_letters WHERE event_id = $1",
      [n.id],
    );
    expect(stored).toEqual([{ queue: "notifications", reason: "retries exhausted" }]);
  });
});

describe("the notification API", { timeout: 60_000 }, () => {
  it("answers bad input with JSON errors and the right status", async () => {
    const cases: [string, string, unknown, number, string][] = [
      ["POST", "/v1/alerts", { symbol: "ACME", direction: "above" }, 422, "validation_failed"],
      ["POST", "/v1/alerts", { symbol: "ACME", direction: "sideways", price: "1" }, 422, "validation_failed"],
      ["POST", "/v1/alerts", { symbol: "NOPE", direction: "above", price: "1" }, 422, "unknown_symbol"],
      ["POST", "/v1/alerts", { symbol: "ACME", direction: "above", price: "101.005" }, 422, "off_tick"],
      ["POST", "/v1/alerts", { symbol: "ACME", direction: "above", price: "-1" }, 422, "invalid_price"],
      [
        "POST",
        "/v1/alerts",
        { symbol: "ACME", direction: "above", price: "1", x: 1 },
        422,
        "validation_failed",
      ],
      ["POST", "/v1/alerts", "{not json", 400, "invalid_json"],
      ["GET", "/v1/alerts?status=bogus", undefined, 422, "validation_failed"],
      ["GET", "/v1/alerts/not-a-uuid", undefined, 422, "validation_failed"],
      ["GET", `/v1/alerts/${crypto.randomUUID()}`, undefined, 404, "alert_not_found"],
      ["DELETE", `/v1/alerts/${crypto.randomUUID()}`, undefined, 404, "alert_not_found"],
      ["PUT", "/v1/notifications/preferences", { timezone: "Mars/Olympus" }, 422, "validation_failed"],
      [
        "PUT",
        "/v1/notifications/preferences",
        { quiet_hours: { start: "25:00", end: "07:00" } },
        422,
        "validation_failed",
      ],
      [
        "PUT",
        "/v1/notifications/preferences",
        { quiet_hours: { start: "07:00", end: "07:00" } },
        422,
        "validation_failed",
      ],
      ["PUT", "/v1/notifications/preferences", { language: "fr" }, 422, "validation_failed"],
      ["PUT", "/v1/notifications/preferences", { phone: "12345" }, 422, "validation_failed"],
      ["PUT", "/v1/notifications/preferences", { email: "not-an-email" }, 422, "validation_failed"],
      [
        "PUT",
        "/v1/notifications/preferences",
        { types: { nope: { email: true } } },
        422,
        "validation_failed",
      ],
      ["PUT", "/v1/notifications/preferences", { channels: { pigeon: true } }, 422, "validation_failed"],
      ["PUT", "/v1/notifications/preferences", { buying_power_threshold: "-5" }, 422, "validation_failed"],
      ["PUT", "/v1/notifications/preferences", "[", 400, "invalid_json"],
      [
        "POST",
        "/v1/notifications/push-subscriptions",
        { endpoint: "https://push.example/x", keys: { p256dh: "abc", auth: "def" } },
        422,
        "validation_failed",
      ],
      [
        "POST",
        "/v1/notifications/push-subscriptions",
        {
          endpoint: "ftp://push.example/x",
          keys: {
            p256dh: base64UrlEncode(new Uint8Array(65).fill(4)),
            auth: base64UrlEncode(new Uint8Array(16)),
          },
        },
        422,
        "invalid_endpoint",
      ],
      [
        "DELETE",
        "/v1/notifications/push-subscriptions",
        { endpoint: "https://push.example/none" },
        404,
        "subscription_not_found",
      ],
      ["GET", "/v1/notifications?limit=0", undefined, 422, "validation_failed"],
      ["GET", "/v1/notifications?page_token=garbage", undefined, 422, "invalid_page_token"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await alice.call<{ code: string; message: string; request_id: string }>(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect(res.body.code, `${method} ${path} ${JSON.stringify(body)}`).toBe(code);
      expect(typeof res.body.message).toBe("string");
      expect(res.body.request_id).toBe(res.headers.get("x-request-id"));
    }
    expect((await api("GET", "/v1/alerts")).status).toBe(401);
  });

  it("keeps one user's alerts from another: someone else's id is simply not found", async () => {
    const mine = await alice.call<Alert>("POST", "/v1/alerts", {
      symbol: "BOLT",
      direction: "above",
      price: "50",
    });
    expect(mine.status).toBe(201);
    expect((await bob.call("GET", `/v1/alerts/${mine.body.id}`)).status).toBe(404);
    expect((await bob.call("DELETE", `/v1/alerts/${mine.body.id}`)).status).toBe(404);
    expect(
      (await bob.call<{ alerts: Alert[] }>("GET", "/v1/alerts")).body.alerts.map((a) => a.id),
    ).not.toContain(mine.body.id);
    expect((await alice.call("DELETE", `/v1/alerts/${mine.body.id}`)).status).toBe(204);
    expect((await alice.call("GET", `/v1/alerts/${mine.body.id}`)).status).toBe(404);
  });

  it("pages through the history", async () => {
    const first = await alice.call<{ notifications: Notification[]; next_page_token: string | null }>(
      "GET",
      "/v1/notifications?limit=2",
    );
    expect(first.body.notifications).toHaveLength(2);
    expect(first.body.next_page_token).not.toBeNull();
    const second = await alice.call<{ notifications: Notification[] }>(
      "GET",
      `/v1/notifications?limit=2&page_token=${encodeURIComponent(first.body.next_page_token as string)}`,
    );
    const ids = [...first.body.notifications, ...second.body.notifications].map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    const all = (await notificationsOf(alice)).map((n) => n.id);
    expect(all.slice(0, ids.length)).toEqual(ids);
  });

  it("shows what the sink recorded on the development outbox page", async () => {
    const res = await fetch(`${(await import("./client.ts")).baseUrl}/dev/outbox?user_id=${alice.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("Dev outbox");
    expect(html).toContain("ACME is above 101.00");
  });
});

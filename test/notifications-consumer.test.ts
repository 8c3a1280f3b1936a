// The notifications consumer and the trade-events processor that feeds it, against the real
// local stack (Postgres primary and shards through the Neon driver and proxy, Redis through the Upstash
// shim). Batches are built by hand so redelivery, reordering and attempt counts are exact; providers are a
// local HTTP server (test/support/provider-stub.ts) reached through the production adapters. The in-app
// channel (a UserSession RPC) is recorded here and tested end to end in test/notifications.test.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { AccountEvent } from "../shared/history/events.ts";
import type { NotificationJob } from "../shared/notifications/types.ts";
import { base64UrlEncode, decryptWebPush, verifyVapid } from "../shared/notifications/web-push.ts";
import { consumeNotifications, type NotificationConsumerDeps } from "../workers/consumers/notifications.ts";
import { consumeNotificationDeadLetters } from "../workers/consumers/notifications-dlq.ts";
import { createNotificationsProcessor } from "../workers/consumers/notifications-processor.ts";
import type { TradeEvent } from "../workers/consumers/trade-events.ts";
import {
  type ChannelSet,
  type Delivery,
  resendEmailChannel,
  sinkChannel,
  webPushChannel,
} from "../workers/notifications/channels.ts";
import { NOTIFICATIONS_MAX_RETRIES } from "../workers/notifications/config.ts";
import { newTrader, type Trader } from "./client.ts";
import { prng, simulateSession } from "./support/history-sim.ts";
import {
  alertJob,
  batchOf,
  consumerEnv,
  deliveries,
  query,
  recordingQueue,
  shardUrlOf,
  stackEnv,
} from "./support/notifications.ts";
import { type ProviderStub, startProviderStub } from "./support/provider-stub.ts";

let stub: ProviderStub;
let ann: Trader;
const inApp: Delivery[] = [];
const requeued = recordingQueue();
const deadLettered = recordingQueue();
// A high per-user limit here: these tests send many emails to one user; the flood test sets its own.
const env = consumerEnv({
  NOTIFICATIONS: requeued.queue,
  NOTIFICATIONS_DLQ: deadLettered.queue,
  NOTIFICATIONS_PER_USER_PER_MINUTE: "1000",
});
const vapid = {
  publicKey: stackEnv.VAPID_PUBLIC_KEY as string,
  privateKey: stackEnv.VAPID_PRIVATE_KEY as string,
};

function channels(e: typeof env): ChannelSet {
  return {
    in_app: {
      channel: "in_app",
      provider: "recorder",
      async send(d) {
        inApp.push(d);
        return { ok: true };
      },
    },
    email: resendEmailChannel({
      baseUrl: stub.url,
      apiKey: "re_test",
      from: "PrepX <n@prepx.test>",
      timeoutMs: 5000,
    }),
    sms: sinkChannel(e, "sms"),
    push: webPushChannel(vapid, "mailto:tests@prepx.dev", 5000),
  };
}

async function consume(
  bodies: readonly unknown[],
  opts: { attempts?: number; deps?: Partial<NotificationConsumerDeps>; env?: typeof env } = {},
) {
  const pending: Promise<unknown>[] = [];
  const b = batchOf(bodies, { attempts: opts.attempts ?? 1 });
  const report = await consumeNotifications(
    b.batch,
    opts.env ?? env,
    { waitUntil: (p) => pending.push(p) },
    {
      channels,
      ...opts.deps,
    },
  );
  await Promise.all(pending);
  return { report, outcomes: b.outcomes() };
}

const emailsTo = (address: string) =>
  stub.to("/emails").filter((r) => (JSON.parse(r.body.toString()) as { to: string[] }).to[0] === address);
const inAppOf = (id: string) => inApp.filter((d) => d.notificationId === id);

beforeAll(async () => {
  stub = await startProviderStub((r) => ({ status: 200, body: { id: `email-${r.path}-${Date.now()}` } }));
  ann = await newTrader("ann");
});

afterAll(async () => {
  await stub?.close();
});

describe("the notifications consumer", { timeout: 60_000 }, () => {
  it("sends each channel once when the same batch is delivered twice", async () => {
    const job = alertJob(ann.id);
    const first = await consume([job]);
    expect(first.outcomes).toEqual([{ state: "ack" }]);
    expect(first.report).toMatchObject({ sent: 2, duplicates: 0 });
    const again = await consume([job]);
    expect(again.outcomes).toEqual([{ state: "ack" }]);
    expect(again.report).toMatchObject({ sent: 0, duplicates: 2 });

    const sent = emailsTo(ann.email).filter((r) => r.headers["idempotency-key"] === `${job.id}:email`);
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0]?.body.toString() ?? "{}")).toMatchObject({
      from: "PrepX <n@prepx.test>",
      subject: "ACME is above 101",
      text: expect.stringContaining("ACME traded at 101.5"),
    });
    expect(sent[0]?.headers.authorization).toBe("Bearer re_test");
    expect(inAppOf(job.id)).toHaveLength(1);
    expect(await deliveries(ann.id, job.id)).toEqual({
      email: { channel: "email", status: "sent", reason: null, attempts: 1 },
      in_app: { channel: "in_app", status: "sent", reason: null, attempts: 1 },
      push: { channel: "push", status: "skipped", reason: "no_push_subscription", attempts: 0 },
      sms: { channel: "sms", status: "skipped", reason: "opted_out", attempts: 0 },
    });
    const [history] = await query<{ title: string; body: string }>(
      shardUrlOf(ann.id),
      "SELECT title, body FROM notifications WHERE id = $1",
      [job.id],
    );
    expect(history?.title).toBe("ACME is above 101");
  });

  it("sends every notification once when jobs arrive shuffled and duplicated within and across batches", async () => {
    const jobs = Array.from({ length: 12 }, () => alertJob(ann.id));
    const rand = prng(10);
    const noisy = [...jobs, ...jobs.filter(() => rand() < 0.5)].sort(() => rand() - 0.5);
    const halves = [noisy.slice(0, 9), noisy.slice(9)];
    for (const half of [...halves, halves[0] as NotificationJob[]]) {
      const r = await consume(half);
      expect(r.outcomes.every((o) => o?.state === "ack")).toBe(true);
    }
    for (const job of jobs) {
      expect(inAppOf(job.id), job.id).toHaveLength(1);
      const sent = stub.to("/emails").filter((r) => r.headers["idempotency-key"] === `${job.id}:email`);
      expect(sent, job.id).toHaveLength(1);
    }
  });

  it("retries a failing provider with growing back-off and sends once it recovers", async () => {
    const job = alertJob(ann.id);
    stub.fail("/emails", 2, 503);
    const delays: (number | undefined)[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await consume([job], { attempts: attempt });
      const o = r.outcomes[0];
      if (o?.state === "retry") delays.push(o.delaySeconds);
      else expect(attempt).toBe(3);
    }
    // NOTIFICATIONS_RETRY_BASE_SECONDS=1, MAX=2 in the test stack: 1 s, then 2 s.
    expect(delays).toEqual([1, 2]);
    const attempts = stub.to("/emails").filter((r) => r.headers["idempotency-key"] === `${job.id}:email`);
    expect(attempts.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(inAppOf(job.id)).toHaveLength(1); // in-app went out on the first attempt and was not repeated
    expect((await deliveries(ann.id, job.id)).email).toMatchObject({ status: "sent", attempts: 3 });
  });

  it("treats a provider's 4xx as permanent: skipped, not retried", async () => {
    const job = alertJob(ann.id);
    stub.fail("/emails", 1, 422);
    const r = await consume([job]);
    expect(r.outcomes).toEqual([{ state: "ack" }]);
    expect((await deliveries(ann.id, job.id)).email).toMatchObject({
      status: "skipped",
      reason: "rejected_by_provider",
    });
  });

  it("moves a job to the dead-letter queue after the last retry with an alert line, and marks it dead", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const job = alertJob(ann.id);
      stub.failAlways("/emails", 500);
      const maxAttempts = NOTIFICATIONS_MAX_RETRIES + 1;
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const r = await consume([job], { attempts: attempt });
        expect(r.outcomes[0]?.state).toBe("retry"); // on the last one the Queue moves it instead
      }
      const last = errors.mock.calls.map((c) => String(c[0])).find((l) => l.includes(job.id));
      expect(JSON.parse(last as string)).toMatchObject({
        level: "error",
        notificationId: job.id,
        channel: "email",
        attempts: maxAttempts,
        msg: expect.stringContaining("notifications-dlq"),
      });
      expect((await deliveries(ann.id, job.id)).email).toMatchObject({
        status: "failed",
        attempts: maxAttempts,
      });

      // What the Queue then delivers to notifications-dlq: the job as it was.
      const pending: Promise<unknown>[] = [];
      const dlq = batchOf([job], { queue: "notifications-dlq" });
      await consumeNotificationDeadLetters(dlq.batch, env, { waitUntil: (p) => pending.push(p) });
      await Promise.all(pending);
      expect(dlq.outcomes()).toEqual([{ state: "ack" }]);
      const alert = errors.mock.calls
        .map((c) => String(c[0]))
        .filter((l) => l.includes('"alert":"dlq"') && l.includes(job.id));
      expect(alert.length).toBeGreaterThan(0);
      expect((await deliveries(ann.id, job.id)).email).toMatchObject({ status: "dead" });
      expect((await deliveries(ann.id, job.id)).in_app).toMatchObject({ status: "sent" });
      const stored = await query<{ queue: string; reason: string }>(
        stackEnv.DATABASE_URL as string,
        "SELECT queue, reason FROM dead_letters WHERE event_id = $1",
        [job.id],
      );
      expect(stored).toEqual([{ queue: "notifications", reason: "retries exhausted" }]);
    } finally {
      stub.reset("/emails");
      errors.mockRestore();
      warnings.mockRestore();
    }
  });

  it("agrees with wrangler.toml on how many retries the Queue makes", () => {
    const toml = readFileSync(path.join(import.meta.dirname, "..", "wrangler.toml"), "utf8");
    const consumer = /\[\[queues\.consumers\]\]\s*queue = "notifications"\s*[^[]*/.exec(toml)?.[0] ?? "";
    expect(consumer).toContain(`max_retries = ${NOTIFICATIONS_MAX_RETRIES}`);
    expect(consumer).toContain('dead_letter_queue = "notifications-dlq"');
  });

  it("sends schema-invalid jobs straight to the dead-letter queue", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    deadLettered.sent.length = 0;
    const bad = { ...alertJob(ann.id), vars: { symbol: "ACME" } };
    const r = await consume([bad, "not a job"]);
    errors.mockRestore();
    expect(r.outcomes).toEqual([{ state: "ack" }, { state: "ack" }]);
    expect(r.report.poison).toBe(2);
    expect(deadLettered.sent.map((s) => s.body)).toEqual([
      expect.objectContaining({ deadLetter: 1, eventId: bad.id, reason: expect.stringContaining("missing") }),
      expect.objectContaining({ deadLetter: 1, body: "not a job" }),
    ]);
  });

  it("respects an opt-out per type and channel, and the profile's coarse switches", async () => {
    const bea = await newTrader("bea");
    const put = await bea.call("PUT", "/v1/notifications/preferences", {
      types: { price_alert: { email: false }, order_filled: { email: true } },
    });
    expect(put.status).toBe(200);
    const alert = alertJob(bea.id);
    await consume([alert]);
    expect(await deliveries(bea.id, alert.id)).toMatchObject({
      in_app: { status: "sent" },
      email: { status: "skipped", reason: "opted_out" },
    });
    expect(emailsTo(bea.email)).toHaveLength(0);

    const fill: NotificationJob = {
      ...alertJob(bea.id),
      type: "order_filled",
      vars: { symbol: "ACME", side: "buy", qty: "5", filled_qty: "5", avg_price: "100.5", order_id: "o" },
    };
    await consume([fill]);
    expect((await deliveries(bea.id, fill.id)).email).toMatchObject({ status: "sent" });

    // The older switch on the profile (PATCH /v1/me) turns email off whatever the detailed preferences say.
    expect((await bea.call("PATCH", "/v1/me", { notification_preferences: { email: false } })).status).toBe(
      200,
    );
    const again = { ...fill, id: `test:${crypto.randomUUID()}` };
    await consume([again]);
    expect((await deliveries(bea.id, again.id)).email).toMatchObject({
      status: "skipped",
      reason: "opted_out",
    });
  });

  it("holds push, email and SMS during quiet hours and delivers them when the job comes back", async () => {
    const cal = await newTrader("cal");
    const now = Date.now();
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    // Quiet from an hour ago until an hour from now, in UTC.
    const put = await cal.call("PUT", "/v1/notifications/preferences", {
      timezone: "UTC",
      quiet_hours: { start: hhmm(now - 3_600_000), end: hhmm(now + 3_600_000) },
      language: "es",
    });
    expect(put.status).toBe(200);
    requeued.sent.length = 0;
    const job = alertJob(cal.id);
    const r = await consume([job], { deps: { now: () => now } });
    expect(r.outcomes).toEqual([{ state: "ack" }]);
    expect(inAppOf(job.id)).toHaveLength(1);
    expect(inAppOf(job.id)[0]?.message).toMatchObject({ title: "ACME está por encima de 101" });
    expect(await deliveries(cal.id, job.id)).toMatchObject({
      in_app: { status: "sent" },
      email: { status: "deferred", reason: "quiet_hours" },
    });
    expect(requeued.sent).toHaveLength(1);
    const back = requeued.sent[0] as { body: NotificationJob; delaySeconds: number };
    expect(back.body).toMatchObject({ id: job.id, channels: ["email"] });
    expect(back.delaySeconds).toBeGreaterThan(3_000);
    expect(back.delaySeconds).toBeLessThanOrEqual(3_660);

    // An hour later the deferred job arrives: the email goes out (in Spanish), in-app is not repeated.
    await consume([back.body], { deps: { now: () => now + back.delaySeconds * 1000 + 1000 } });
    expect((await deliveries(cal.id, job.id)).email).toMatchObject({ status: "sent" });
    const email = emailsTo(cal.email).at(-1);
    expect(JSON.parse(email?.body.toString() ?? "{}").subject).toBe("ACME está por encima de 101");
    expect(inAppOf(job.id)).toHaveLength(1);
  });

  it("drops a flood beyond the per-user limit as rate_limited, but never a security event", async () => {
    const dee = await newTrader("dee");
    const limited = consumerEnv({
      NOTIFICATIONS: requeued.queue,
      NOTIFICATIONS_DLQ: deadLettered.queue,
      NOTIFICATIONS_PER_USER_PER_MINUTE: "3",
    });
    const jobs = Array.from({ length: 6 }, () => alertJob(dee.id));
    const r = await consume(jobs, { env: limited });
    expect(r.report.rateLimited).toBe(3);
    const emails = await Promise.all(jobs.map(async (j) => (await deliveries(dee.id, j.id)).email));
    expect(emails.filter((e) => e?.status === "sent")).toHaveLength(3);
    expect(emails.filter((e) => e?.reason === "rate_limited")).toHaveLength(3);
    for (const j of jobs) expect(inAppOf(j.id)).toHaveLength(1); // in-app is the inbox: never dropped

    const login: NotificationJob = {
      v: 1,
      id: `login:${crypto.randomUUID()}`,
      userId: dee.id,
      type: "security_login",
      vars: { at: String(Date.now()), ip: "203.0.113.7", user_agent: "test" },
      at: Date.now(),
    };
    await consume([login], { env: limited });
    expect((await deliveries(dee.id, login.id)).email).toMatchObject({ status: "sent" });
  });

  it("sends Web Push encrypted for the subscription and signed with VAPID, and forgets gone subscriptions", async () => {
    const eve = await newTrader("eve");
    const ua = await userAgentKeys();
    const live = `${stub.url}/push/${crypto.randomUUID()}`;
    const gone = `${stub.url}/gone/${crypto.randomUUID()}`;
    stub.failAlways("/gone/", 410);
    for (const endpoint of [live, gone]) {
      const res = await eve.call("POST", "/v1/notifications/push-subscriptions", {
        endpoint,
        keys: { p256dh: ua.publicKey, auth: ua.auth },
      });
      expect(res.status).toBe(201);
    }
    const job = alertJob(eve.id);
    const r = await consume([job]);
    expect(r.outcomes).toEqual([{ state: "ack" }]);
    const pushed = stub.to(new URL(live).pathname);
    expect(pushed).toHaveLength(1);
    const req = pushed[0] as (typeof pushed)[number];
    expect(req.headers["content-encoding"]).toBe("aes128gcm");
    expect(await verifyVapid(String(req.headers.authorization), vapid.publicKey)).toMatchObject({
      ok: true,
      claims: { aud: stub.url, sub: "mailto:tests@prepx.dev" },
    });
    const payload = JSON.parse(new TextDecoder().decode(await decryptWebPush(new Uint8Array(req.body), ua)));
    expect(payload).toMatchObject({ id: job.id, type: "price_alert", title: "ACME is above 101" });
    const subs = await eve.call<{ subscriptions: { endpoint: string }[] }>(
      "GET",
      "/v1/notifications/push-subscriptions",
    );
    expect(subs.body.subscriptions.map((s) => s.endpoint)).toEqual([live]);
    stub.reset("/gone/");
  });
});

describe("consumer throughput", { timeout: 120_000 }, () => {
  it("delivers full batches of 100 notifications in one pass each (figures printed, not asserted)", async () => {
    const users = await Promise.all(Array.from({ length: 5 }, (_, i) => newTrader(`tp${i}`)));
    const batches = Array.from({ length: 4 }, () =>
      Array.from({ length: 100 }, (_, i) => alertJob((users[i % users.length] as Trader).id)),
    );
    const t = performance.now();
    let sent = 0;
    for (const b of batches) {
      const r = await consume(b);
      expect(r.outcomes.every((o) => o?.state === "ack")).toBe(true);
      sent += r.report.sent;
    }
    const ms = performance.now() - t;
    const d = performance.now();
    for (const b of batches) expect((await consume(b)).report.duplicates).toBe(200);
    const dupMs = performance.now() - d;
    expect(sent).toBe(800);
    console.log(
      `[notifications] ${batches.length} × 100 jobs, ${sent} deliveries (in-app + email to a local HTTP server): ` +
        `${Math.round(ms)} ms, ${Math.round((400 / ms) * 1000)} notifications/s; redelivered: ${Math.round(dupMs)} ms ` +
        `(${Math.round((400 / dupMs) * 1000)}/s)`,
    );
  });
});

/** A browser's push subscription keys. */
async function userAgentKeys() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return {
    publicKey: base64UrlEncode(raw),
    privateKey: jwk.d as string,
    auth: base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
  };
}

// ------------------------------------------------------------------------------------------------------
// The trade-events processor that derives the jobs
// ------------------------------------------------------------------------------------------------------

function recordingProcessor(buyingPower: Map<string, number> = new Map()) {
  const jobs: NotificationJob[] = [];
  const processor = createNotificationsProcessor({
    enqueue: async (_env, batch) => {
      jobs.push(...batch);
    },
    buyingPower: async (_env, userId) => buyingPower.get(userId) ?? null,
  });
  const run = async (events: TradeEvent[]) => {
    const pending: Promise<unknown>[] = [];
    const result = await processor.process(env, events, { waitUntil: (p) => pending.push(p) });
    await Promise.all(pending);
    expect([...result.failed]).toEqual([]);
  };
  return { jobs, run };
}

const asTradeEvents = (events: AccountEvent[]): TradeEvent[] =>
  events.map((event) => ({ kind: "account", id: event.id, event }));

describe("the notifications processor of the trade-events queue", { timeout: 60_000 }, () => {
  it("derives the same order notifications from duplicated and shuffled account events", async () => {
    const sim = simulateSession({ userIds: [crypto.randomUUID(), crypto.randomUUID()], steps: 40, seed: 10 });
    const inOrder = recordingProcessor();
    await inOrder.run(asTradeEvents(sim.events));
    const ids = new Set(inOrder.jobs.map((j) => j.id));
    expect(ids.size).toBeGreaterThan(5);
    expect(inOrder.jobs.some((j) => j.type === "order_filled")).toBe(true);

    const rand = prng(4);
    const noisy = recordingProcessor();
    const shuffled = [...sim.events, ...sim.events.filter(() => rand() < 0.3)].sort(() => rand() - 0.5);
    for (let i = 0; i < shuffled.length; i += 17) await noisy.run(asTradeEvents(shuffled.slice(i, i + 17)));
    expect(new Set(noisy.jobs.map((j) => j.id))).toEqual(ids);
    const filled = inOrder.jobs.find((j) => j.type === "order_filled");
    expect(filled?.vars).toMatchObject({
      symbol: expect.any(String),
      side: expect.stringMatching(/buy|sell/),
    });
  });

  it("warns once per crossing of the buying-power level and re-arms above it", async () => {
    const fay = await newTrader("fay");
    expect(
      (await fay.call("PUT", "/v1/notifications/preferences", { buying_power_threshold: "5000" })).status,
    ).toBe(200);
    const bp = new Map<string, number>();
    const p = recordingProcessor(bp);
    const event = (n: number) =>
      ({
        kind: "account",
        id: `fill:test:${fay.id}:${n}`,
        event: { type: "account.fill", userId: fay.id, id: `fill:test:${fay.id}:${n}` },
      }) as unknown as TradeEvent;

    bp.set(fay.id, 6_000_000_000); // 6,000 USD: above
    await p.run([event(1)]);
    bp.set(fay.id, 4_000_000_000); // 4,000: below → warning 1
    await p.run([event(2)]);
    await p.run([event(2)]); // redelivered: nothing new
    await p.run([event(3)]); // still below: nothing new
    bp.set(fay.id, 5_000_000_000); // back at the level: re-armed
    await p.run([event(4)]);
    bp.set(fay.id, 100_000_000); // 100: below again → warning 2
    await p.run([event(5)]);
    expect(p.jobs.map((j) => [j.id, j.vars.buying_power, j.vars.threshold])).toEqual([
      [`bp:${fay.id}:1`, "4000", "5000"],
      [`bp:${fay.id}:2`, "100", "5000"],
    ]);
  });

  it("fires price alerts on simulated price moves: once vs repeating, whatever the delivery order", async () => {
    const symbol = `T${crypto.randomUUID().slice(0, 6).toUpperCase()}`;
    const userId = ann.id;
    const alertIds = {
      once: crypto.randomUUID(),
      repeating: crypto.randomUUID(),
      below: crypto.randomUUID(),
    };
    await query(
      stackEnv.DATABASE_URL as string,
      `INSERT INTO price_alerts (id, user_id, symbol, direction, target_ticks, target_price, frequency) VALUES
        ($1, $4, $5, 'above', 10100, '101.00', 'once'),
        ($2, $4, $5, 'above', 10100, '101.00', 'repeating'),
        ($3, $4, $5, 'below', 9800, '98.00', 'once')`,
      [alertIds.once, alertIds.repeating, alertIds.below, userId, symbol],
    );
    // A price path: up through 101, back under, up again, then down through 98.
    const path = [10_000, 10_050, 10_120, 10_150, 10_090, 10_000, 10_100, 10_200, 9_900, 9_790];
    const trades = path.map((price, i) => fillEvent(symbol, 7_000 + i, price));
    const p = recordingProcessor();
    // Delivered shuffled, in two batches, the first one twice.
    const rand = prng(7);
    const shuffled = [...trades].sort(() => rand() - 0.5);
    await p.run(shuffled.slice(0, 5));
    await p.run(shuffled.slice(0, 5));
    await p.run(shuffled.slice(5));

    const rows = await query<{ id: string; status: string; trigger_count: number; last_seq: string }>(
      stackEnv.DATABASE_URL as string,
      "SELECT id, status, trigger_count, last_seq FROM price_alerts WHERE symbol = $1",
      [symbol],
    );
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(byId[alertIds.once]).toMatchObject({ status: "triggered", trigger_count: 1 });
    expect(byId[alertIds.below]).toMatchObject({ status: "triggered", trigger_count: 1 });
    expect(byId[alertIds.repeating]?.status).toBe("active");
    expect(p.jobs.every((j) => j.type === "price_alert" && j.userId === userId)).toBe(true);
    const fired = (id: string) => p.jobs.filter((j) => j.vars.alert_id === id).map((j) => j.vars.price);
    expect(fired(alertIds.below)).toEqual(["97.90"]);
    // Shuffled delivery can only lose crossings that arrived late (documented), never duplicate one.
    expect(fired(alertIds.once)).toHaveLength(1);
    expect(new Set(p.jobs.map((j) => j.id)).size).toBe(p.jobs.length);

    // In order, the repeating alert fires once per crossing: at 101.20 and again at 101.00.
    const ordered = recordingProcessor();
    const fresh = crypto.randomUUID();
    const symbol2 = `${symbol}B`;
    await query(
      stackEnv.DATABASE_URL as string,
      `INSERT INTO price_alerts (id, user_id, symbol, direction, target_ticks, target_price, frequency)
       VALUES ($1, $2, $3, 'above', 10100, '101.00', 'repeating')`,
      [fresh, userId, symbol2],
    );
    const trades2 = path.map((price, i) => fillEvent(symbol2, 7_000 + i, price));
    await ordered.run(trades2.slice(0, 4));
    await ordered.run(trades2.slice(4));
    await ordered.run(trades2); // redelivered: nothing new
    expect(ordered.jobs.map((j) => j.vars.price)).toEqual(["101.20", "101.00"]);
    expect(ordered.jobs.map((j) => j.id)).toEqual([
      `alert:${fresh}:${symbol2}:7002`,
      `alert:${fresh}:${symbol2}:7006`,
    ]);
    await query(stackEnv.DATABASE_URL as string, "DELETE FROM price_alerts WHERE symbol IN ($1, $2)", [
      symbol,
      symbol2,
    ]);
  });
});

function fillEvent(symbol: string, seq: number, price: number): TradeEvent {
  const id = `${symbol}:${seq}`;
  const ts = 1_800_000_000_000 + seq;
  return {
    kind: "book",
    id,
    message: {
      id,
      symbol,
      seq,
      ts,
      tickSize: "0.01",
      lotSize: "1",
      type: "fill",
      event: {
        type: "fill",
        seq,
        ts,
        fillId: seq,
        price,
        qty: 1,
        takerOrderId: "t",
        makerOrderId: "m",
        takerAccount: "a",
        makerAccount: "b",
        takerSide: "buy",
        takerLeavesQty: 0,
        makerLeavesQty: 0,
        takerStatus: "filled",
        makerStatus: "filled",
      },
    },
  } as unknown as TradeEvent;
}

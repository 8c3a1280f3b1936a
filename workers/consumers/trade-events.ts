/**
 * The `trade-events` Queue consumer: a list of processors over one batch.
 *
 * The queue carries two kinds of message:
 * - book events from each OrderBook's outbox ({@link TradeEventMessage}: `order`, `fill`,
 *   `trading_status`, `reference_price`; id `${symbol}:${seq}`), packed (a `BookEventPack`, which
 *   `unpack` turns back into those messages);
 * - account events from each UserSession's outbox ({@link AccountEvent}: `kind: "account"`,
 *   `account.order`, `account.fill`, …; see shared/history/events.ts).
 *
 * Each message is parsed once. One that fails its schema is poison: it goes to the dead-letter queue at
 * once with the reason (an alert-worthy log line), and is acknowledged. The others are handed to every
 * processor; a processor reports the ids it could not process, and those messages are retried with
 * back-off (after `max_retries` in wrangler.toml the Queue moves them to `trade-events-dlq`). Everything
 * else is acknowledged. Delivery is at-least-once, so **every processor must be idempotent per event id**:
 * a message is retried whole, also for processors that already handled it.
 *
 * Adding a processor (e.g. OHLCV bars from book fills): implement {@link TradeEventProcessor} in its own
 * module and append it to {@link TRADE_EVENT_PROCESSORS}:
 *
 * ```ts
 * export const barsProcessor: TradeEventProcessor = {
 *   name: "bars",
 *   async process(env, events, ctx) {
 *     const fills = events.flatMap((e) => (e.kind === "book" && e.message.type === "fill" ? [e.message] : []));
 *     // … write idempotently, keyed by the event id …
 *     return { failed: new Map() };     // or the ids that failed, with their errors
 *   },
 * };
 * ```
 */
import type { TradeEventMessage } from "../../shared/book-events.ts";
import { type AccountEvent, isAccountEventBody, parseAccountEvent } from "../../shared/history/events.ts";
import { storableBody, unpack } from "../../shared/queue-pack.ts";
import type { Env } from "../env.ts";
import { analyticsProcessor } from "./analytics-processor.ts";
import { barsProcessor } from "./bars.ts";
import { errorText } from "./errors.ts";
import { historyProcessor } from "./history-processor.ts";
import { notificationsProcessor } from "./notifications-processor.ts";

/** A parsed message of the trade-events Queue. */
export type TradeEvent =
  | { kind: "book"; id: string; message: TradeEventMessage }
  | { kind: "account"; id: string; event: AccountEvent };

export interface ProcessorContext {
  waitUntil(promise: Promise<unknown>): void;
}

export interface ProcessorResult {
  /** Events this processor could not process, by event id; they are retried (whole messages). */
  failed: ReadonlyMap<string, unknown>;
  /** Events that can never be processed, by event id, with the reason: sent to the DLQ at once. */
  poison?: ReadonlyMap<string, string>;
}

export interface TradeEventProcessor {
  readonly name: string;
  /** Called with every valid message of the batch (in delivery order); must be idempotent per event id. */
  process(env: Env, events: readonly TradeEvent[], ctx: ProcessorContext): Promise<ProcessorResult>;
}

/** The processors of the trade-events Queue, in this order. Append new ones here. */
export const TRADE_EVENT_PROCESSORS: TradeEventProcessor[] = [
  historyProcessor,
  barsProcessor,
  analyticsProcessor,
  notificationsProcessor,
];

const BOOK_TYPES = new Set(["order", "fill", "trading_status", "reference_price"]);

/** Parses a message body; `{ error }` when it is poison. */
export function parseTradeEvent(body: unknown): TradeEvent | { error: string } {
  if (isAccountEventBody(body)) {
    const parsed = parseAccountEvent(body);
    return parsed.ok
      ? { kind: "account", id: parsed.event.id, event: parsed.event }
      : { error: parsed.error };
  }
  const m = body as Partial<TradeEventMessage> | null;
  if (
    typeof m === "object" &&
    m !== null &&
    typeof m.id === "string" &&
    typeof m.symbol === "string" &&
    Number.isSafeInteger(m.seq) &&
    typeof m.type === "string" &&
    BOOK_TYPES.has(m.type) &&
    typeof m.event === "object" &&
    m.event !== null
  ) {
    return { kind: "book", id: m.id, message: m as TradeEventMessage };
  }
  return { error: "neither a book event nor an account event" };
}

/** Retry delay after the n-th failed attempt: 2, 4, 8, … seconds, at most 5 minutes. */
export const retryDelaySeconds = (attempts: number) => Math.min(300, 2 ** Math.max(1, attempts));

/** What the dead-letter consumer receives for poison messages (moved messages arrive as they were). */
export interface DeadLetterEnvelope {
  deadLetter: 1;
  queue: string;
  messageId: string;
  eventId: string | null;
  reason: string;
  attempts: number;
  body: unknown;
}

export function isDeadLetterEnvelope(body: unknown): body is DeadLetterEnvelope {
  return typeof body === "object" && body !== null && (body as { deadLetter?: unknown }).deadLetter === 1;
}

const eventIdOf = (body: unknown): string | null => {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : null;
};

export interface ConsumeReport {
  acked: number;
  retried: number;
  poison: number;
  /** Per processor: events it saw and how many it failed. */
  processors: { name: string; failed: number; ms: number }[];
}

/**
 * Consume one batch of the trade-events Queue. Never throws: every message ends acknowledged or retried.
 */
export async function consumeTradeEvents(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ProcessorContext,
  processors: readonly TradeEventProcessor[] = TRADE_EVENT_PROCESSORS,
): Promise<ConsumeReport> {
  const report: ConsumeReport = { acked: 0, retried: 0, poison: 0, processors: [] };
  const valid: { message: Message<unknown>; events: TradeEvent[] }[] = [];
  for (const message of batch.messages) {
    // A message is one event or a pack of them (shared/queue-pack.ts); each event is parsed on its own.
    let bodies: unknown[];
    try {
      bodies = unpack(message.body);
    } catch (error) {
      // A book event pack that does not hold together: nothing in it can be read.
      report.poison++;
      await deadLetter(env, batch.queue, message, errorText(error));
      continue;
    }
    const events: TradeEvent[] = [];
    const bad: { body: unknown; error: string }[] = [];
    for (const body of bodies) {
      const parsed = parseTradeEvent(body);
      if ("error" in parsed) bad.push({ body, error: parsed.error });
      else events.push(parsed);
    }
    if (events.length === 0) {
      report.poison++;
      await deadLetter(env, batch.queue, message, bad[0]?.error ?? "an empty pack");
      continue;
    }
    // Poison inside a pack: those bodies go to the DLQ alone; the rest of the pack is processed.
    let parked = true;
    for (const { body, error } of bad) {
      report.poison++;
      parked = (await deadLetter(env, batch.queue, message, error, body)) && parked;
    }
    if (!parked) {
      report.retried++;
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      continue;
    }
    valid.push({ message, events });
  }
  if (valid.length === 0) return report;

  const events = valid.flatMap((v) => v.events);
  const failed = new Map<string, { processor: string; error: unknown }>();
  const poisoned = new Map<string, string>();
  await Promise.all(
    processors.map(async (p) => {
      const t = performance.now();
      let result: ProcessorResult;
      try {
        result = await p.process(env, events, ctx);
      } catch (error) {
        result = { failed: new Map(events.map((e) => [e.id, error])) };
      }
      for (const [id, error] of result.failed)
        if (!failed.has(id)) failed.set(id, { processor: p.name, error });
      for (const [id, reason] of result.poison ?? []) poisoned.set(id, `${p.name}: ${reason}`);
      report.processors.push({
        name: p.name,
        failed: result.failed.size,
        ms: Math.round(performance.now() - t),
      });
    }),
  );

  for (const { message, events: carried } of valid) {
    // Events a processor calls poison are parked one by one; if the DLQ is unreachable the message retries.
    let parked = true;
    for (const event of carried) {
      const poison = poisoned.get(event.id);
      if (poison === undefined) continue;
      report.poison++;
      parked = (await deadLetter(env, batch.queue, message, poison, bodyOf(event))) && parked;
    }
    const failure = carried
      .map((e) => ({ event: e, failure: failed.get(e.id) }))
      .find((f) => f.failure !== undefined && !poisoned.has(f.event.id));
    if (failure === undefined && parked) {
      message.ack();
      report.acked++;
      continue;
    }
    report.retried++;
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    if (failure?.failure === undefined) continue;
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "trade event retried",
        queue: batch.queue,
        processor: failure.failure.processor,
        eventId: failure.event.id,
        events: carried.length,
        attempts: message.attempts,
        error: errorText(failure.failure.error),
      }),
    );
  }
  return report;
}

/** The queue body an event was parsed from (what the dead-letter queue keeps). */
function bodyOf(event: TradeEvent): unknown {
  return event.kind === "book" ? event.message : event.event;
}

/**
 * Poison: send it to the dead-letter queue with the reason. A whole message (`body` omitted) is then
 * acknowledged; one event of a pack (`body` given) is parked and the caller settles the message. Returns
 * false when the DLQ could not be reached: the message is retried instead (the Queue moves it to the DLQ
 * after `max_retries`).
 */
async function deadLetter(
  env: Env,
  queue: string,
  message: Message<unknown>,
  reason: string,
  body?: unknown,
): Promise<boolean> {
  const whole = body === undefined;
  const payload = storableBody(whole ? message.body : body);
  const eventId = eventIdOf(payload);
  console.error(
    JSON.stringify({
      level: "error",
      alert: "dlq",
      msg: "poison message sent to the dead-letter queue",
      queue,
      messageId: message.id,
      eventId,
      attempts: message.attempts,
      reason,
    }),
  );
  const envelope: DeadLetterEnvelope = {
    deadLetter: 1,
    queue,
    messageId: message.id,
    eventId,
    reason,
    attempts: message.attempts,
    body: payload,
  };
  try {
    if (!env.TRADE_EVENTS_DLQ) throw new Error("TRADE_EVENTS_DLQ is not bound");
    await env.TRADE_EVENTS_DLQ.send(envelope, { contentType: "json" });
    if (whole) message.ack();
    return true;
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "dead-letter send failed",
        messageId: message.id,
        error: errorText(error),
      }),
    );
    if (whole) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    return false;
  }
}

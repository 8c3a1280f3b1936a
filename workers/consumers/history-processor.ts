/**
 * The `history` processor of the trade-events Queue: account events → the user's shard.
 *
 * The batch's account events are grouped by shard (the shard map of workers/db/shards.ts) and each group
 * is written in **one transaction** on that shard's primary (`applyAccountEvents`). Shards are written in
 * parallel; a failure on one shard does not hold back the others, and redelivery of the whole batch is
 * harmless (everything is deduplicated by event id).
 *
 * If a group's transaction fails, its events are applied again one by one, each in a savepoint of one
 * transaction, so a single bad event (e.g. a constraint violation) is isolated: the good ones commit and
 * only the bad one is retried, until the Queue moves it to the dead-letter queue. An event whose ledger
 * lines do not balance is poison and goes to the DLQ at once. Book events are not this processor's business.
 */
import type { AccountEvent } from "../../shared/history/events.ts";
import { db } from "../db/index.ts";
import { errorText } from "./errors.ts";
import { type ApplyReport, applyAccountEvents, PoisonEventError } from "./history.ts";
import type { TradeEventProcessor } from "./trade-events.ts";

/** Test seam and metrics: called after each committed shard transaction. */
export interface HistoryObserver {
  committed?(shard: number, report: ApplyReport, ms: number): void;
  /** Runs inside each transaction after it wrote, before it commits; throw to simulate a failure. */
  afterWrite?(shard: number, events: readonly AccountEvent[]): void;
}

export function createHistoryProcessor(observer: HistoryObserver = {}): TradeEventProcessor {
  return {
    name: "history",
    async process(env, events, ctx) {
      const failed = new Map<string, unknown>();
      const poison = new Map<string, string>();
      const accountEvents: AccountEvent[] = [];
      for (const e of events) if (e.kind === "account") accountEvents.push(e.event);
      if (accountEvents.length === 0) return { failed };

      let dbs: ReturnType<typeof db>;
      const byShard = new Map<number, AccountEvent[]>();
      try {
        dbs = db(env, (p) => ctx.waitUntil(p));
        for (const e of accountEvents) {
          const shard = dbs.shardOf(e.userId);
          const list = byShard.get(shard);
          if (list) list.push(e);
          else byShard.set(shard, [e]);
        }
      } catch (error) {
        // Misconfiguration (no shard URLs): keep the events, they are retried and end in the DLQ.
        console.error(
          JSON.stringify({ level: "error", msg: "history: no database", error: errorText(error) }),
        );
        for (const e of accountEvents) failed.set(e.id, error);
        return { failed, poison };
      }

      const write = async (shard: number, list: AccountEvent[]) => {
        const t = performance.now();
        let writeMs = 0;
        const report = await dbs.shardTransaction(shard, async (tx) => {
          const w = performance.now();
          const applied = await applyAccountEvents(tx, list);
          observer.afterWrite?.(shard, list);
          writeMs = performance.now() - w;
          return applied;
        });
        const ms = performance.now() - t;
        observer.committed?.(shard, report, ms);
        console.log(
          JSON.stringify({
            level: "info",
            msg: "history batch committed",
            shard,
            events: list.length,
            applied: report.applied.length,
            duplicates: report.duplicates.length,
            rows: report.rows,
            // ms: connect + BEGIN + writes + COMMIT; writeMs: the statements of applyAccountEvents.
            ms: Math.round(ms),
            writeMs: Math.round(writeMs),
          }),
        );
      };

      const fail = (shard: number, eventId: string, error: unknown) => {
        if (error instanceof PoisonEventError) poison.set(eventId, error.message);
        else failed.set(eventId, error);
        logFailure(shard, eventId, error);
      };
      await Promise.all(
        [...byShard].map(async ([shard, list]) => {
          try {
            await write(shard, list);
            return;
          } catch (error) {
            if (list.length === 1) {
              fail(shard, list[0]?.id ?? "", error);
              return;
            }
            console.warn(
              JSON.stringify({
                level: "warn",
                msg: "history batch failed; applying its events one by one",
                shard,
                events: list.length,
                error: errorText(error),
              }),
            );
          }
          // One transaction, one savepoint per event: the good ones commit, each bad one rolls back alone.
          try {
            const t = performance.now();
            const failures = new Map<string, unknown>();
            await dbs.shardTransaction(shard, async (tx) => {
              for (const e of list) {
                try {
                  await tx.transaction(async (savepoint) => {
                    await applyAccountEvents(savepoint, [e]);
                    observer.afterWrite?.(shard, [e]);
                  });
                } catch (error) {
                  failures.set(e.id, error);
                }
              }
            });
            for (const [id, error] of failures) fail(shard, id, error);
            console.log(
              JSON.stringify({
                level: "info",
                msg: "history events committed one by one",
                shard,
                events: list.length,
                failed: failures.size,
                ms: Math.round(performance.now() - t),
              }),
            );
          } catch (error) {
            for (const e of list) fail(shard, e.id, error);
          }
        }),
      );
      return { failed, poison };
    },
  };
}

function logFailure(shard: number, eventId: string, error: unknown): void {
  const poison = error instanceof PoisonEventError;
  console.error(
    JSON.stringify({
      level: "error",
      ...(poison ? { alert: "poison_event" } : {}),
      msg: "history event not applied",
      shard,
      eventId,
      error: errorText(error),
    }),
  );
}

export const historyProcessor: TradeEventProcessor = createHistoryProcessor();

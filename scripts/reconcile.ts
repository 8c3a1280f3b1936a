/**
 * `npm run db:reconcile`: compares every user's Postgres ledger with the cash and positions of the user's
 * UserSession, through the worker's `POST /admin/reconcile` (the worker is the only thing that can reach
 * the Durable Objects), and reports differences.
 *
 * - Users: every `users` row of every shard (SHARD_DATABASE_URLS, else the local stack).
 * - Worker: API_URL (default http://127.0.0.1:8787, `npm run dev`); admin credentials ADMIN_TOKEN, or
 *   ADMIN_EMAIL + ADMIN_PASSWORD (default: the local demo admin).
 * - Users that are `pending` (Postgres has not caught up yet) are checked again for up to --wait seconds
 *   (default 30).
 *
 * Exit code: 0 all reconciled, 1 differences found, 2 still pending after waiting.
 */
import { databaseTargets, fail, option } from "./db-targets.ts";
import { withClient } from "./stack/pg.ts";

interface Result {
  user_id: string;
  shard: number;
  status: "ok" | "pending" | "mismatch" | "no_account";
  session_seq: number;
  applied_through: number | null;
  outbox: { rows: number; failing: number };
  differences: { field: string; live: number; ledger: number }[];
}

const apiUrl = (option(process.argv, "url") ?? process.env.API_URL ?? "http://127.0.0.1:8787").replace(
  /\/$/,
  "",
);
const waitSeconds = Number(option(process.argv, "wait") ?? 30);

async function adminToken(): Promise<string> {
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  const res = await fetch(`${apiUrl}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      email: process.env.ADMIN_EMAIL ?? "admin@prepx.dev",
      password: process.env.ADMIN_PASSWORD ?? "prepx-admin-2026",
    }),
  });
  if (!res.ok) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function reconcile(token: string, ids: string[]): Promise<Result[]> {
  const out: Result[] = [];
  for (let i = 0; i < ids.length; i += 100) {
    const res = await fetch(`${apiUrl}/admin/reconcile`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ user_ids: ids.slice(i, i + 100) }),
    });
    if (!res.ok) throw new Error(`POST /admin/reconcile: ${res.status} ${await res.text()}`);
    out.push(...((await res.json()) as { results: Result[] }).results);
  }
  return out;
}

try {
  const { shardUrls } = databaseTargets();
  const ids: string[] = [];
  for (const url of shardUrls) {
    const rows = await withClient(
      url,
      async (db) => (await db.query<{ id: string }>("SELECT id FROM users ORDER BY id")).rows,
    );
    ids.push(...rows.map((r) => r.id));
  }
  const token = await adminToken();
  const t = performance.now();
  const results = new Map((await reconcile(token, ids)).map((r) => [r.user_id, r]));
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const pending = [...results.values()].filter((r) => r.status === "pending").map((r) => r.user_id);
    if (pending.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 2_000));
    for (const r of await reconcile(token, pending)) results.set(r.user_id, r);
  }
  const all = [...results.values()];
  const count = (s: Result["status"]) => all.filter((r) => r.status === s).length;
  for (const r of all) {
    if (r.status === "mismatch") {
      console.log(`MISMATCH ${r.user_id} (shard ${r.shard}, seq ${r.session_seq})`);
      for (const d of r.differences)
        console.log(`  ${d.field}: live ${d.live}, ledger ${d.ledger}, off by ${d.ledger - d.live}`);
    } else if (r.status === "pending") {
      console.log(
        `PENDING  ${r.user_id} (shard ${r.shard}): Postgres at ${r.applied_through ?? "nothing"}, session at ${r.session_seq}; ` +
          `outbox ${r.outbox.rows} rows (${r.outbox.failing} failing)`,
      );
    }
  }
  console.log(
    `[reconcile] ${all.length} users in ${Math.round(performance.now() - t)} ms: ${count("ok")} ok, ` +
      `${count("mismatch")} mismatch, ${count("pending")} pending, ${count("no_account")} without an account`,
  );
  process.exit(count("mismatch") > 0 ? 1 : count("pending") > 0 ? 2 : 0);
} catch (err) {
  fail("reconcile", err);
}

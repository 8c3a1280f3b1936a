import { hashPassword } from "../../workers/auth/password.ts";
import type { Role } from "../../workers/auth/types.ts";
import { parseShardMap, shardOf } from "../../workers/db/shards.ts";
import { withClient } from "./pg.ts";
import type { SeedContext, Seeder } from "./seed.ts";

/**
 * Demo accounts for local development and tests (documented in docs/auth.md):
 *
 * | email            | password              | role   |
 * |------------------|-----------------------|--------|
 * | demo@prepx.dev   | `prepx-demo-2026`     | trader |
 * | admin@prepx.dev  | `prepx-admin-2026`    | admin  |
 *
 * Created the way `POST /v1/auth/register` creates users (workers/auth/users.ts `registerUser`):
 * the same PBKDF2 hashing, the same shard map, the user row on its shard first and then the email
 * in the global directory. Idempotent: an existing account keeps its password and gets its role
 * set again. Refuses to run when ENVIRONMENT=production (the passwords are public).
 */
export const DEMO_USERS: readonly { email: string; password: string; displayName: string; role: Role }[] = [
  { email: "demo@prepx.dev", password: "prepx-demo-2026", displayName: "Demo Trader", role: "trader" },
  { email: "admin@prepx.dev", password: "prepx-admin-2026", displayName: "PrepX Admin", role: "admin" },
];

async function seedUser(ctx: SeedContext, user: (typeof DEMO_USERS)[number]): Promise<"created" | "kept"> {
  const map = parseShardMap(process.env.SHARD_MAP, ctx.shardUrls.length);
  const existing = await ctx.global.query<{ user_id: string }>(
    "SELECT user_id FROM email_directory WHERE email = $1",
    [user.email],
  );
  const found = existing.rows[0];
  if (found) {
    const url = ctx.shardUrls[shardOf(found.user_id, map)];
    if (!url) throw new Error(`no shard URL for user ${found.user_id}`);
    await withClient(url, (shard) =>
      shard.query("UPDATE users SET role = $2, updated_at = now() WHERE id = $1 AND role <> $2", [
        found.user_id,
        user.role,
      ]),
    );
    return "kept";
  }

  const userId = crypto.randomUUID();
  const shardIndex = shardOf(userId, map);
  const url = ctx.shardUrls[shardIndex];
  if (!url) throw new Error(`no shard URL for shard ${shardIndex}`);
  const passwordHash = await hashPassword(user.password);
  await withClient(url, (shard) =>
    shard.query(
      `INSERT INTO users (id, email, display_name, password_hash, role) VALUES ($1, $2, $3, $4, $5)`,
      [userId, user.email, user.displayName, passwordHash, user.role],
    ),
  );
  const claimed = await ctx.global.query(
    `INSERT INTO email_directory (email, user_id, shard) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING`,
    [user.email, userId, shardIndex],
  );
  if (claimed.rowCount === 0) {
    // Another seeder won the race: drop our unreachable copy, exactly as registerUser does.
    await withClient(url, (shard) => shard.query("DELETE FROM users WHERE id = $1", [userId]));
    return "kept";
  }
  return "created";
}

export const demoUsersSeeder: Seeder = {
  name: "demo users",
  async run(ctx) {
    if (process.env.ENVIRONMENT === "production") {
      ctx.log("seed: demo users — skipped (ENVIRONMENT=production)");
      return;
    }
    const results = [];
    for (const user of DEMO_USERS) results.push(`${user.email} ${await seedUser(ctx, user)}`);
    ctx.log(`seed: demo users — ${results.join(", ")}`);
  },
};

import type { Redis } from "@upstash/redis/cloudflare";
import type { LimitState } from "../middleware/rate-limit.ts";
import { type RevocationCheck, revocationStatus, sessionKey, userKey } from "./revocation.ts";
import type { AccessClaims } from "./tokens.ts";

/**
 * One Redis round trip for a request on a per-user rate-limited route: the access token's revocation keys
 * and the user's sliding window, in one script. Asking them one after the other (an `MGET`, then the rate
 * limiter's script) cost two REST calls per trading request, together about 8 % of workerd's thread in
 * load tests (docs/capacity.md).
 *
 * The window is the sliding-window approximation `@upstash/ratelimit` uses: the count of the current fixed
 * window plus the previous window's count weighted by how much of it still overlaps the last `window` ms.
 * A refused request is not counted.
 *
 * KEYS: the current and the previous window's counters, then 0 or 2 revocation keys (session, user).
 * ARGV: limit, now (ms), window (ms).
 * Returns: remaining requests after this one (-1: refused), then the revocation values (false → nil).
 */
export const GATE_SCRIPT = `
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local current = tonumber(redis.call("GET", KEYS[1]) or "0")
local previous = tonumber(redis.call("GET", KEYS[2]) or "0")
local used = math.floor(previous * (1 - (now % window) / window)) + current
local remaining = -1
if used < limit then
  local value = redis.call("INCR", KEYS[1])
  if value == 1 then redis.call("PEXPIRE", KEYS[1], window * 2 + 1000) end
  remaining = limit - (used - current + value)
end
if #KEYS == 4 then
  return { remaining, redis.call("GET", KEYS[3]), redis.call("GET", KEYS[4]) }
end
return { remaining }
`;

type Script = ReturnType<Redis["createScript"]>;
const scripts = new WeakMap<Redis, Script>();

/** The gate script of this client (EVALSHA, with EVAL the first time Redis does not know it). */
function gateScript(redis: Redis): Script {
  let script = scripts.get(redis);
  if (script === undefined) {
    script = redis.createScript(GATE_SCRIPT);
    scripts.set(redis, script);
  }
  return script;
}

export interface GateLimit {
  /** Names the keys: `rl:<name>:<identifier>:<window index>`. */
  name: string;
  identifier: string;
  limit: number;
  windowMs: number;
}

export interface GateResult {
  /** `null` when no token was checked (the caller authenticated with an API key). */
  revocation: RevocationCheck | null;
  state: LimitState;
  refused: boolean;
}

/** Counts this request against `limit` and, for an access token, reads its revocation keys. */
export async function checkGate(
  redis: Redis,
  claims: AccessClaims | null,
  limit: GateLimit,
  now = Date.now(),
): Promise<GateResult> {
  const index = Math.floor(now / limit.windowMs);
  const prefix = `rl:${limit.name}:${limit.identifier}`;
  const keys = [`${prefix}:${index}`, `${prefix}:${index - 1}`];
  if (claims !== null) keys.push(sessionKey(claims.sessionId), userKey(claims.userId));
  const reply = (await gateScript(redis).exec(keys, [
    String(limit.limit),
    String(now),
    String(limit.windowMs),
  ])) as unknown[];
  const remaining = Number(reply[0]);
  if (!Number.isInteger(remaining)) throw new Error("rate-limit script answered without a count");
  return {
    revocation: claims === null ? null : revocationStatus(claims, reply[1] ?? null, reply[2] ?? null),
    state: { limit: limit.limit, remaining: Math.max(0, remaining), reset: (index + 1) * limit.windowMs },
    refused: remaining < 0,
  };
}

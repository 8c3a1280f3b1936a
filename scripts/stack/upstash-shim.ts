import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { RedisConnection, type RespArg, RespError, type RespReply, RespStatus } from "./resp.ts";
import { type Logger, listen, stackLog } from "./util.ts";

/**
 * A local stand-in for Upstash's REST API in front of a real redis-server, so `@upstash/redis` and
 * `@upstash/ratelimit` run unchanged in dev and tests.
 *
 * - `POST /` with `["SET","k","v"]` → `{"result": …}`; a Redis error → HTTP 400 `{"error": …}`.
 * - `POST /pipeline`, `POST /multi-exec` with `[[…],[…]]` → `[{"result": …} | {"error": …}, …]`.
 * - `GET|POST /set/k/v` (command in the path; a POST body is the last argument), handy with curl.
 * - `Authorization: Bearer <token>` (or `?_token=`) is required, as on Upstash.
 * - `Upstash-Encoding: base64` (the client's default): every string in the result is base64, except "OK".
 * - Lua scripts: Redis 7.0 rejects the `#!lua flags=allow-key-locking` shebang that @upstash/ratelimit
 *   sends (a newer Redis flag), so unsupported flags are stripped before EVAL / SCRIPT LOAD; EVALSHA with
 *   the client's sha (of the original text) is mapped to the sha Redis knows.
 */
export interface UpstashShimOptions {
  host?: string;
  /** Default 63800. */
  port?: number;
  redisHost?: string;
  redisPort: number;
  /** Default: env UPSTASH_REDIS_REST_TOKEN, else "local-dev-token". */
  token?: string;
  log?: Logger;
}

export interface RunningUpstashShim {
  host: string;
  port: number;
  /** What UPSTASH_REDIS_REST_URL is set to: `http://host:port`. */
  url: string;
  token: string;
  stop(): Promise<void>;
}

export const DEFAULT_UPSTASH_TOKEN = "local-dev-token";

/** Commands that need a connection of their own, or make no sense behind a stateless REST API. */
const BLOCKING = new Set([
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BLMOVE",
  "BLMPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "BZMPOP",
  "WAIT",
  "WAITAOF",
]);
const REFUSED = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "SUNSUBSCRIBE",
  "MONITOR",
  "SELECT",
  "SWAPDB",
  "QUIT",
  "RESET",
  "HELLO",
  "AUTH",
  "SYNC",
  "PSYNC",
  "REPLICAOF",
  "SLAVEOF",
  "SHUTDOWN",
  "DEBUG",
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
]);

/** Script flags Redis 7.0 understands; others (e.g. allow-key-locking) make it refuse the script. */
const SUPPORTED_SCRIPT_FLAGS = new Set([
  "no-writes",
  "allow-oom",
  "allow-stale",
  "no-cluster",
  "allow-cross-slot-keys",
]);

export const sha1 = (text: string): string => createHash("sha1").update(text).digest("hex");

/**
 * Drops script flags this Redis does not know. Without any flag left the shebang line goes (leaving the
 * newline, so line numbers in errors stay right) and the script runs in Redis' classic EVAL mode.
 */
export function adaptScript(script: string): string {
  if (!script.startsWith("#!")) return script;
  const newline = script.indexOf("\n");
  const first = newline < 0 ? script : script.slice(0, newline);
  const rest = newline < 0 ? "" : script.slice(newline);
  const match = /^#!lua(?:\s+flags=(\S*))?\s*$/.exec(first);
  if (!match) return script;
  const flags = (match[1] ?? "").split(",").filter(Boolean);
  const kept = flags.filter((f) => SUPPORTED_SCRIPT_FLAGS.has(f));
  if (kept.length === flags.length) return script;
  return kept.length > 0 ? `#!lua flags=${kept.join(",")}${rest}` : rest;
}

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Turns a Redis reply into Upstash's JSON `result`. */
export function encodeReply(reply: RespReply, base64: boolean): JsonValue {
  if (reply === null || typeof reply === "number") return reply;
  if (reply instanceof RespStatus) {
    return base64 && reply.value !== "OK" ? Buffer.from(reply.value).toString("base64") : reply.value;
  }
  if (reply instanceof RespError) return reply.message; // only nested (e.g. inside a Lua table)
  if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64));
  return base64 ? reply.toString("base64") : reply.toString("utf8");
}

function toArg(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value);
  if (value === null || value === undefined) return "";
  return JSON.stringify(value);
}

interface Prepared {
  args: RespArg[];
  /** Adjusts the reply (SCRIPT LOAD answers with the client's sha). */
  mapReply?: (reply: RespReply) => RespReply;
  /** Set when the command is refused without asking Redis. */
  refused?: string;
  blocking?: boolean;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startUpstashShim(opts: UpstashShimOptions): Promise<RunningUpstashShim> {
  const log = opts.log ?? stackLog;
  const host = opts.host ?? "127.0.0.1";
  const redisHost = opts.redisHost ?? "127.0.0.1";
  const token = opts.token ?? process.env.UPSTASH_REDIS_REST_TOKEN ?? DEFAULT_UPSTASH_TOKEN;
  const tokenBytes = Buffer.from(token);
  /** client sha (of the script as sent) → sha of the script Redis was given. */
  const scriptShas = new Map<string, string>();

  // A few shared connections, used in turn (replies come back in order on each); reconnected when lost.
  const pool: (Promise<RedisConnection> | undefined)[] = new Array(4).fill(undefined);
  const temporary = new Set<RedisConnection>();
  let nextConn = 0;
  const connection = async (): Promise<RedisConnection> => {
    const slot = nextConn++ % pool.length;
    const existing = await pool[slot]?.catch(() => undefined);
    if (existing && !existing.closed) return existing;
    const connecting = RedisConnection.connect(opts.redisPort, redisHost);
    pool[slot] = connecting;
    return connecting;
  };

  function prepare(raw: unknown): Prepared {
    if (!Array.isArray(raw) || raw.length === 0) {
      return { args: [], refused: 'ERR a command is a non-empty JSON array like ["GET","key"]' };
    }
    const args = raw.map(toArg);
    const name = (args[0] ?? "").toUpperCase();
    if (REFUSED.has(name) || (name === "CLIENT" && args[1]?.toUpperCase() === "REPLY")) {
      return { args, refused: `ERR Command is not available over REST: '${args[0]}'` };
    }
    if ((name === "EVAL" || name === "EVAL_RO") && args[1] !== undefined) {
      const adapted = adaptScript(args[1]);
      if (adapted !== args[1]) {
        scriptShas.set(sha1(args[1]), sha1(adapted));
        args[1] = adapted;
      }
    } else if ((name === "EVALSHA" || name === "EVALSHA_RO") && args[1] !== undefined) {
      args[1] = scriptShas.get(args[1].toLowerCase()) ?? args[1];
    } else if (name === "SCRIPT" && args[1]?.toUpperCase() === "LOAD" && args[2] !== undefined) {
      const original = args[2];
      const adapted = adaptScript(original);
      if (adapted !== original) {
        const clientSha = sha1(original);
        scriptShas.set(clientSha, sha1(adapted));
        args[2] = adapted;
        return { args, mapReply: (reply) => (reply instanceof RespError ? reply : Buffer.from(clientSha)) };
      }
    } else if (name === "SCRIPT" && args[1]?.toUpperCase() === "EXISTS") {
      for (let i = 2; i < args.length; i++) {
        const sha = args[i] ?? "";
        args[i] = scriptShas.get(sha.toLowerCase()) ?? sha;
      }
    }
    const blocking =
      BLOCKING.has(name) || ((name === "XREAD" || name === "XREADGROUP") && hasBlockOption(args));
    return { args, blocking };
  }

  async function runOne(cmd: Prepared): Promise<RespReply> {
    if (cmd.refused) return new RespError(cmd.refused);
    let reply: RespReply;
    if (cmd.blocking) {
      const conn = await RedisConnection.connect(opts.redisPort, redisHost);
      temporary.add(conn);
      try {
        reply = await conn.command(...cmd.args);
      } finally {
        temporary.delete(conn);
        conn.close();
      }
    } else {
      reply = await (await connection()).command(...cmd.args);
    }
    return cmd.mapReply ? cmd.mapReply(reply) : reply;
  }

  async function runPipeline(cmds: Prepared[]): Promise<RespReply[]> {
    const toSend = cmds.filter((c) => !c.refused);
    const replies = toSend.length > 0 ? await (await connection()).send(toSend.map((c) => c.args)) : [];
    let i = 0;
    return cmds.map((c) => {
      if (c.refused) return new RespError(c.refused);
      const reply = replies[i++] ?? null;
      return c.mapReply ? c.mapReply(reply) : reply;
    });
  }

  async function runTransaction(cmds: Prepared[]): Promise<RespReply[]> {
    const refused = cmds.find((c) => c.refused);
    if (refused?.refused) throw new HttpError(400, refused.refused);
    // One write: nothing else on the shared connection can come between MULTI and EXEC.
    const replies = await (await connection()).send([["MULTI"], ...cmds.map((c) => c.args), ["EXEC"]]);
    const exec = replies[replies.length - 1] ?? null;
    if (exec instanceof RespError || !Array.isArray(exec)) {
      const queued = replies.slice(1, -1).find((r) => r instanceof RespError);
      const reason = queued instanceof RespError ? ` (${queued.message})` : "";
      throw new HttpError(400, `${exec instanceof RespError ? exec.message : "EXECABORT"}${reason}`);
    }
    return exec.map((reply, i) => {
      const map = cmds[i]?.mapReply;
      return map ? map(reply) : reply;
    });
  }

  const entry = (reply: RespReply, base64: boolean): JsonValue =>
    reply instanceof RespError ? { error: reply.message } : { result: encodeReply(reply, base64) };

  async function handle(
    req: http.IncomingMessage,
    body: string,
  ): Promise<{ status: number; json: JsonValue }> {
    const url = new URL(req.url ?? "/", "http://shim");
    const auth = req.headers.authorization ?? "";
    const presented = Buffer.from(
      auth.startsWith("Bearer ") ? auth.slice(7) : (url.searchParams.get("_token") ?? ""),
    );
    if (presented.length !== tokenBytes.length || !timingSafeEqual(presented, tokenBytes)) {
      return { status: 401, json: { error: "Unauthorized" } };
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const route = url.pathname.replace(/\/+$/, "");
    const parseJson = (): unknown => {
      try {
        return JSON.parse(body);
      } catch {
        throw new HttpError(400, "ERR the body is not valid JSON");
      }
    };
    if (route === "/pipeline" || route === "/multi-exec") {
      const list = parseJson();
      if (!Array.isArray(list)) throw new HttpError(400, "ERR expected a JSON array of commands");
      const cmds = list.map(prepare);
      const replies = route === "/pipeline" ? await runPipeline(cmds) : await runTransaction(cmds);
      return { status: 200, json: replies.map((r) => entry(r, base64)) };
    }
    let raw: unknown;
    if (route === "") {
      raw = parseJson();
    } else {
      try {
        raw = route.split("/").slice(1).map(decodeURIComponent);
      } catch {
        throw new HttpError(400, "ERR malformed URL encoding in the path");
      }
      if (req.method === "POST" && body.length > 0) (raw as string[]).push(body);
    }
    const reply = await runOne(prepare(raw));
    if (reply instanceof RespError) return { status: 400, json: { error: reply.message } };
    return { status: 200, json: { result: encodeReply(reply, base64) } };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks).toString("utf8"))
        .catch((err: unknown) => {
          if (err instanceof HttpError) return { status: err.status, json: { error: err.message } };
          log(`upstash shim: ${(err as Error).message}`);
          return { status: 500, json: { error: `ERR shim: ${(err as Error).message}` } };
        })
        .then(({ status, json }) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(json));
        });
    });
  });

  const port = await listen(server, opts.port ?? 63800, host, "upstash shim");
  const url = `http://${host}:${port}`;
  log(`upstash REST shim ready on ${url} (→ redis ${redisHost}:${opts.redisPort})`);

  return {
    host,
    port,
    url,
    token,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const conn of await Promise.all(pool.map((c) => c?.catch(() => undefined)))) conn?.close();
      for (const conn of temporary) conn.close();
      await closed;
    },
  };
}

function hasBlockOption(args: string[]): boolean {
  return args.some((a) => a.toUpperCase() === "BLOCK");
}

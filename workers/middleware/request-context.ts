import type { MiddlewareHandler } from "hono";
import type { AppBindings, Logger } from "../env.ts";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/**
 * Builds a logger that writes one JSON object per line, each carrying the request id. Lines below
 * `minLevel` (the `LOG_LEVEL` var; default "info") are dropped, e.g. access lines in test runs.
 */
export function jsonLogger(base: Record<string, unknown>, minLevel: string = "info"): Logger {
  const threshold = LEVELS[minLevel as Level] ?? LEVELS.info;
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return;
    const line = JSON.stringify({ level, msg, ...base, ...fields, ts: new Date().toISOString() });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
  };
}

/**
 * Accepts a well-formed `X-Request-Id` from the client or creates one, echoes it on the response,
 * and gives the request a logger that stamps it on every line. Logs one access line per request.
 */
export const requestContext: MiddlewareHandler<AppBindings> = async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const requestId = incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : crypto.randomUUID();
  const log = jsonLogger({ request_id: requestId }, c.env.LOG_LEVEL);
  c.set("requestId", requestId);
  c.set("log", log);
  const started = Date.now();
  await next();
  c.header("X-Request-Id", requestId);
  log.info("request", {
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    status: c.res.status,
    duration_ms: Date.now() - started,
  });
};

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppBindings } from "./env.ts";

/**
 * A failure the client can act on. `code` is stable and documented; `message` is for humans.
 * Thrown anywhere in a request, it becomes `{code, message, request_id}` with `status`.
 */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    opts: { details?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers ?? {};
  }
}

export interface ErrorBody {
  code: string;
  message: string;
  request_id?: string;
  details?: unknown;
}

export function errorBody(
  c: Context<AppBindings>,
  code: string,
  message: string,
  details?: unknown,
): ErrorBody {
  const body: ErrorBody = { code, message, request_id: c.get("requestId") };
  if (details !== undefined) body.details = details;
  return body;
}

/** The one error handler: domain errors keep their status and code; anything else is a 500 without internals. */
export function handleError(err: unknown, c: Context<AppBindings>): Response {
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
    return c.json(errorBody(c, err.code, err.message, err.details), err.status);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    // Hono's JSON validator reports a body that does not parse as 400 "Malformed JSON in request body".
    if (status === 400 && /malformed json/i.test(err.message)) {
      return c.json(errorBody(c, "invalid_json", "request body is not valid JSON"), 400);
    }
    const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "http_error";
    return c.json(errorBody(c, code, err.message || "request failed"), status);
  }
  if (err instanceof SyntaxError) {
    return c.json(errorBody(c, "invalid_json", "request body is not valid JSON"), 400);
  }
  const log = c.get("log");
  const detail = err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : { err };
  if (log) log.error("unhandled error", detail);
  else console.error(JSON.stringify({ level: "error", msg: "unhandled error", ...detail }));
  return c.json(errorBody(c, "internal_error", "internal error"), 500);
}

export function notFound(c: Context<AppBindings>): Response {
  return c.json(
    errorBody(c, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
    404,
  );
}

import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppBindings } from "./env.ts";
import { ApiError } from "./errors.ts";

/**
 * Every router of the API is an OpenAPIHono: its zod schemas validate input at the edge and
 * also produce the OpenAPI 3.1 document served at `/openapi.json`.
 *
 * A request that fails its schema gets 422 `validation_failed` with the zod issues as details
 * (Alpaca answers unprocessable parameters with 422 too); malformed JSON gets 400 `invalid_json`.
 */
export function createRouter() {
  return new OpenAPIHono<AppBindings>({
    defaultHook: (result) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
        const first = issues[0];
        const message = first ? `${first.path || "request"}: ${first.message}` : "request is invalid";
        throw new ApiError(422, "validation_failed", message, { details: issues });
      }
    },
  });
}

export type Router = ReturnType<typeof createRouter>;

export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "PrepX Edge API",
    version: "0.1.0",
    description:
      "Paper trading with Alpaca-compatible trading endpoints. Money and quantities are decimal strings. " +
      "Errors are JSON objects `{code, message, request_id}`.",
  },
} as const;

interface OperationLike {
  summary?: string;
  description?: string;
  tags?: string[];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A self-contained, human-readable API reference rendered from the OpenAPI document (no CDN needed). */
export function renderReference(doc: { paths?: object }): string {
  const rows: string[] = [];
  const paths = Object.entries((doc.paths ?? {}) as Record<string, Record<string, unknown>>).sort(
    ([a], [b]) => a.localeCompare(b),
  );
  for (const [path, ops] of paths) {
    for (const [method, raw] of Object.entries(ops)) {
      const op = raw as OperationLike;
      rows.push(
        `<tr><td class="m ${method}">${method.toUpperCase()}</td><td><code>${escapeHtml(path)}</code></td>` +
          `<td>${escapeHtml((op.tags ?? []).join(", "))}</td><td>${escapeHtml(op.summary ?? "")}` +
          `${op.description ? `<div class="d">${escapeHtml(op.description)}</div>` : ""}</td></tr>`,
      );
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PrepX Edge API reference</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:top}
.m{font-weight:600;font-family:monospace}.get{color:#0a7}.post{color:#06c}.patch{color:#a60}.delete{color:#c22}.d{color:#555;font-size:13px}</style>
</head><body><h1>PrepX Edge API reference</h1>
<p>Machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Authenticate with
<code>Authorization: Bearer &lt;access_token&gt;</code> or the Alpaca headers <code>APCA-API-KEY-ID</code> /
<code>APCA-API-SECRET-KEY</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>Tag</th><th>Summary</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table></body></html>`;
}

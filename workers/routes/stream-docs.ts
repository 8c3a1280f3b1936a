/**
 * OpenAPI entries for the WebSocket endpoints whose handlers are plain Hono routes (after the upgrade the
 * protocol is not HTTP, so there is no schema to validate): documented as GETs answering 101.
 */
import type { Router } from "../openapi.ts";

const upgradeResponses = {
  101: { description: "Switching protocols: the WebSocket" },
  401: { description: "Credentials on the upgrade request are not valid" },
  426: { description: "Not a WebSocket upgrade request" },
};

export function documentStreams(app: Router): void {
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/stream",
    tags: ["Streaming"],
    summary: "The caller's trade_updates (WebSocket, Alpaca's protocol)",
    description:
      'Authenticate with headers on the upgrade, or with the first message `{"action":"authenticate",' +
      '"data":{"key_id","secret_key"}}` (or `{"oauth_token"}`); then `{"action":"listen","data":{"streams":' +
      '["trade_updates"]}}`. See docs/trading-api.md and ADR 0004.',
    responses: upgradeResponses,
  });
  for (const path of ["/v2/stream/data", "/v2/iex", "/v2/sip"]) {
    app.openAPIRegistry.registerPath({
      method: "get",
      path,
      tags: ["Streaming"],
      summary: "Market data: trades, quotes and minute bars (WebSocket, Alpaca's data-stream protocol)",
      description:
        'Authenticate with headers or `{"action":"auth","key","secret"}`, then `{"action":"subscribe",' +
        '"trades":[…],"quotes":[…],"bars":[…]}`. See docs/market-data.md.',
      responses: upgradeResponses,
    });
  }
}

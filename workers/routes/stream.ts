/**
 * `GET /stream`: the caller's `trade_updates` WebSocket, in Alpaca's protocol.
 *
 * Two ways in:
 * - Credentials on the upgrade request (Alpaca headers, `Authorization: Bearer`): the edge authenticates
 *   and hands the socket straight to the user's UserSession, which holds it on the hibernation API (an
 *   idle socket costs nothing).
 * - Credentials in the first message, as Alpaca's SDKs send them
 *   (`{"action":"authenticate","data":{"key_id","secret_key"}}` or `{"data":{"oauth_token"}}`): the edge
 *   must read that message before it knows the user, so it accepts the socket itself, authenticates, then
 *   relays frames to and from the UserSession's socket for the life of the connection.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { STREAM_USER_HEADER } from "../../durable-objects/user-session.ts";
import { API_KEY_ID_HEADER, API_SECRET_HEADER, authenticate } from "../auth/middleware.ts";
import type { AppBindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { type RelayProtocol, relayAfterAuthentication } from "../lib/ws-relay.ts";

export const stream = new Hono<AppBindings>();

stream.get("/stream", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "GET /stream must be a WebSocket upgrade");
  }
  if (c.req.header(API_KEY_ID_HEADER) || c.req.header(API_SECRET_HEADER) || c.req.header("authorization")) {
    const principal = await authenticate(c);
    return connectToSession(c, principal.userId);
  }
  return relayAfterAuthentication(c, accountStreamProtocol(c));
});

/** A WebSocket to the user's UserSession, marked as belonging to `userId` (only the edge can say so). */
async function connectToSession(c: Context<AppBindings>, userId: string): Promise<Response> {
  const stub = c.env.USER_SESSION.get(c.env.USER_SESSION.idFromName(userId));
  return stub.fetch("https://user-session/stream", {
    headers: { Upgrade: "websocket", [STREAM_USER_HEADER]: userId },
  });
}

interface AuthFrame {
  action?: unknown;
  key?: unknown;
  secret?: unknown;
  data?: { key_id?: unknown; secret_key?: unknown; oauth_token?: unknown };
}

/** The credentials of an `authenticate` message as the headers the auth middleware reads. */
function credentialHeaders(frame: AuthFrame): Record<string, string> | null {
  if (frame.action !== "authenticate" && frame.action !== "auth") return null;
  const keyId = frame.data?.key_id ?? frame.key;
  const secret = frame.data?.secret_key ?? frame.secret;
  if (typeof keyId === "string" && typeof secret === "string") {
    return { [API_KEY_ID_HEADER]: keyId, [API_SECRET_HEADER]: secret };
  }
  const token = frame.data?.oauth_token;
  if (typeof token === "string") return { authorization: `Bearer ${token}` };
  return {};
}

/** The account stream's side of the in-band authentication (Alpaca's `authenticate` message). */
function accountStreamProtocol(c: Context<AppBindings>): RelayProtocol {
  const unauthorized = { stream: "authorization", data: { status: "unauthorized", action: "authenticate" } };
  return {
    credentials(text) {
      let frame: AuthFrame;
      try {
        frame = JSON.parse(text);
      } catch {
        return { reply: { action: "error", data: { error_message: "message is not valid JSON" } } };
      }
      const headers = typeof frame === "object" && frame !== null ? credentialHeaders(frame) : null;
      return headers === null
        ? { reply: { action: "error", data: { error_message: "authenticate first" } } }
        : { headers };
    },
    connect: (principal) => connectToSession(c, principal.userId),
    // The session answers the authenticate message itself ("authorized"), then any queued frames.
    forwardFirstMessage: true,
    refusal: (why) => ({
      reply: unauthorized,
      reason:
        why === "timeout"
          ? "authentication timed out"
          : why === "flood"
            ? "too many messages before authentication"
            : "unauthorized",
    }),
    failureLog: "stream authentication failed",
  };
}

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

/** How long a socket may stay open without authenticating. */
const AUTH_TIMEOUT_MS = 10_000;
/** Frames a client may send before it is authenticated (a slow auth should not be flooded). */
const MAX_PENDING_FRAMES = 16;

export const stream = new Hono<AppBindings>();

stream.get("/stream", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "GET /stream must be a WebSocket upgrade");
  }
  if (c.req.header(API_KEY_ID_HEADER) || c.req.header(API_SECRET_HEADER) || c.req.header("authorization")) {
    const principal = await authenticate(c);
    return connectToSession(c, principal.userId);
  }
  return relayAfterAuthentication(c);
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

function relayAfterAuthentication(c: Context<AppBindings>): Response {
  const pair = new WebSocketPair();
  const [client, server] = Object.values(pair) as [WebSocket, WebSocket];
  server.accept();
  let upstream: WebSocket | null = null;
  let authenticating = false;
  const pending: (string | ArrayBuffer)[] = [];
  const send = (body: unknown) => {
    try {
      server.send(JSON.stringify(body));
    } catch {}
  };
  const refuse = (reason: string) => {
    send({ stream: "authorization", data: { status: "unauthorized", action: "authenticate" } });
    try {
      server.close(1008, reason);
    } catch {}
  };
  const timer = setTimeout(() => {
    if (!upstream) refuse("authentication timed out");
  }, AUTH_TIMEOUT_MS);

  const onFirstMessage = async (data: string | ArrayBuffer) => {
    let frame: AuthFrame;
    try {
      frame = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
    } catch {
      send({ action: "error", data: { error_message: "message is not valid JSON" } });
      return;
    }
    const headers = typeof frame === "object" && frame !== null ? credentialHeaders(frame) : null;
    if (headers === null) {
      send({ action: "error", data: { error_message: "authenticate first" } });
      return;
    }
    authenticating = true;
    try {
      const request = new Request(c.req.url, { headers });
      const principal = await authenticate(withRequest(c, request));
      const res = await connectToSession(c, principal.userId);
      const ws = res.webSocket;
      if (!ws) throw new Error("the account stream did not accept the connection");
      ws.accept();
      ws.addEventListener("message", (ev) => {
        try {
          server.send(ev.data);
        } catch {}
      });
      ws.addEventListener("close", (ev) => {
        try {
          server.close(ev.code === 1005 || ev.code === 1006 ? 1000 : ev.code, ev.reason);
        } catch {}
      });
      upstream = ws;
      clearTimeout(timer);
      // The session answers the authenticate message itself ("authorized"), then any queued frames.
      ws.send(typeof data === "string" ? data : new TextDecoder().decode(data));
      for (const frameData of pending.splice(0)) ws.send(frameData);
    } catch (err) {
      c.get("log").warn("stream authentication failed", {
        error: err instanceof ApiError ? err.code : err instanceof Error ? err.message : String(err),
      });
      refuse("unauthorized");
    } finally {
      authenticating = false;
    }
  };

  server.addEventListener("message", (ev) => {
    if (upstream) {
      upstream.send(ev.data);
    } else if (authenticating) {
      if (pending.length >= MAX_PENDING_FRAMES) refuse("too many messages before authentication");
      else pending.push(ev.data);
    } else {
      c.executionCtx.waitUntil(onFirstMessage(ev.data));
    }
  });
  server.addEventListener("close", (ev) => {
    clearTimeout(timer);
    try {
      upstream?.close(ev.code === 1005 || ev.code === 1006 ? 1000 : ev.code, ev.reason);
    } catch {}
  });
  return new Response(null, { status: 101, webSocket: client });
}

/**
 * The request context with another request's headers, so credentials from a stream message go through
 * exactly the same checks (signature, revocation, API key lookup) as credentials on an HTTP request.
 */
function withRequest(c: Context<AppBindings>, request: Request): Context<AppBindings> {
  const req = {
    header: (name: string) => request.headers.get(name) ?? undefined,
    url: request.url,
    raw: request,
  };
  return new Proxy(c, {
    get(target, prop) {
      if (prop === "req") return req;
      // Hono's Context keeps its state in private fields: read and call through the real object.
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

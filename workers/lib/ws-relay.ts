/**
 * A client WebSocket whose credentials arrive in its first message: the edge accepts the socket itself,
 * reads that message, authenticates it exactly as an HTTP request's headers would be, opens the upstream
 * socket (a Durable Object's) for the user, and from then on relays frames both ways for the life of the
 * connection. The account stream (`/stream`) and the market-data stream (`/v2/stream/data`) differ only in
 * their protocol's messages, which {@link RelayProtocol} supplies.
 */
import type { Context } from "hono";
import { authenticate } from "../auth/middleware.ts";
import type { Principal } from "../auth/types.ts";
import type { AppBindings } from "../env.ts";
import { ApiError } from "../errors.ts";

/** How long a socket may stay open without authenticating. */
const AUTH_TIMEOUT_MS = 10_000;
/** Frames a client may send before it is authenticated (a slow auth should not be flooded). */
const MAX_PENDING_FRAMES = 16;

export type RelayRefusal = "timeout" | "unauthorized" | "flood";

export interface RelayProtocol {
  /** Sent as soon as the socket opens, if the protocol greets. */
  greeting?: unknown;
  /** The first message's credentials as request headers, or the reply to a message that carries none. */
  credentials(text: string): { headers: Record<string, string> } | { reply: unknown };
  /** The upstream socket for the authenticated user (a 101 response carrying it). */
  connect(principal: Principal): Promise<Response>;
  /** Whether the upstream answers the authenticating message itself (it is forwarded to it first). */
  forwardFirstMessage: boolean;
  /** What to send (if anything) before closing with 1008 and `reason`. */
  refusal(why: RelayRefusal): { reply?: unknown; reason: string };
  /** The warning logged when authentication fails. */
  failureLog: string;
}

export function relayAfterAuthentication(c: Context<AppBindings>, protocol: RelayProtocol): Response {
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  let upstream: WebSocket | null = null;
  let authenticating = false;
  const pending: (string | ArrayBuffer)[] = [];
  const send = (body: unknown) => {
    try {
      server.send(JSON.stringify(body));
    } catch {}
  };
  const close = (code: number, reason: string) => {
    try {
      server.close(code, reason);
    } catch {}
  };
  const refuse = (why: RelayRefusal) => {
    const { reply, reason } = protocol.refusal(why);
    if (reply !== undefined) send(reply);
    close(1008, reason);
  };
  if (protocol.greeting !== undefined) send(protocol.greeting);
  const timer = setTimeout(() => {
    if (!upstream) refuse("timeout");
  }, AUTH_TIMEOUT_MS);

  const onFirstMessage = async (data: string | ArrayBuffer) => {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const credentials = protocol.credentials(text);
    if ("reply" in credentials) return send(credentials.reply);
    authenticating = true;
    try {
      const principal = await authenticate(withHeaders(c, credentials.headers));
      const ws = (await protocol.connect(principal)).webSocket;
      if (!ws) throw new Error("the upstream stream did not accept the connection");
      ws.accept();
      ws.addEventListener("message", (ev) => {
        try {
          server.send(ev.data);
        } catch {}
      });
      ws.addEventListener("close", (ev) =>
        close(ev.code === 1005 || ev.code === 1006 ? 1000 : ev.code, ev.reason),
      );
      upstream = ws;
      clearTimeout(timer);
      if (protocol.forwardFirstMessage) ws.send(text);
      for (const frame of pending.splice(0)) ws.send(frame);
    } catch (err) {
      c.get("log").warn(protocol.failureLog, {
        error: err instanceof ApiError ? err.code : err instanceof Error ? err.message : String(err),
      });
      refuse("unauthorized");
    } finally {
      authenticating = false;
    }
  };

  server.addEventListener("message", (ev) => {
    if (upstream) upstream.send(ev.data);
    else if (authenticating) {
      if (pending.length >= MAX_PENDING_FRAMES) refuse("flood");
      else pending.push(ev.data);
    } else c.executionCtx.waitUntil(onFirstMessage(ev.data));
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
 * The request context with other request headers, so credentials from a stream message go through exactly
 * the same checks (signature, revocation, API key lookup) as credentials on an HTTP request.
 */
function withHeaders(c: Context<AppBindings>, headers: Record<string, string>): Context<AppBindings> {
  const request = new Request(c.req.url, { headers });
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

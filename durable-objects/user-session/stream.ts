/**
 * The `trade_updates` stream of one account, on hibernating WebSockets, speaking Alpaca's protocol:
 *
 *   → {"action":"authenticate","data":{"key_id":"…","secret_key":"…"}}
 *   ← {"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}
 *   → {"action":"listen","data":{"streams":["trade_updates"]}}
 *   ← {"stream":"listening","data":{"streams":["trade_updates"]}}
 *   ← {"stream":"trade_updates","data":{"event":"fill","order":{…},"timestamp":"…","price":"…","qty":"…","position_qty":"…"}}
 *
 * Sockets reach this object only after the edge authenticated them, so `authenticate` is answered
 * `authorized` here; the credentials themselves were checked at the edge.
 * @internal
 */
import type { AlpacaTradeUpdate } from "../../shared/orders/alpaca.ts";

interface SocketState {
  listening: string[];
  badFrames: number;
}

/**
 * `trade_updates` is Alpaca's; `notifications` is PrepX's in-app notification stream. A client
 * only receives the streams it listens to, so Alpaca SDKs (which listen to `trade_updates`) never see it.
 */
const KNOWN_STREAMS = new Set(["trade_updates", "notifications"]);
const MAX_FRAME_CHARS = 4096;
const MAX_BAD_FRAMES = 10;

export class TradeStream {
  private readonly ctx: DurableObjectState;

  constructor(ctx: DurableObjectState) {
    this.ctx = ctx;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  accept(): Response {
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ listening: [], badFrames: 0 } satisfies SocketState);
    return new Response(null, { status: 101, webSocket: client });
  }

  onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    const state = (ws.deserializeAttachment() as SocketState | null) ?? { listening: [], badFrames: 0 };
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    const bad = (why: string) => {
      state.badFrames++;
      ws.serializeAttachment(state);
      send(ws, { action: "error", data: { error_message: why } });
      if (state.badFrames >= MAX_BAD_FRAMES) ws.close(1008, "too many invalid messages");
    };
    if (text.length > MAX_FRAME_CHARS) {
      ws.close(1009, "message too large");
      return;
    }
    let frame: { action?: unknown; data?: { streams?: unknown } };
    try {
      frame = JSON.parse(text);
    } catch {
      bad("message is not valid JSON");
      return;
    }
    if (typeof frame !== "object" || frame === null) {
      bad("message must be a JSON object");
      return;
    }
    switch (frame.action) {
      case "authenticate":
      case "auth":
        send(ws, { stream: "authorization", data: { status: "authorized", action: "authenticate" } });
        return;
      case "listen": {
        const streams = frame.data?.streams;
        if (!Array.isArray(streams) || !streams.every((s) => typeof s === "string")) {
          bad("listen needs data.streams, an array of stream names");
          return;
        }
        state.listening = streams.filter((s) => KNOWN_STREAMS.has(s));
        ws.serializeAttachment(state);
        send(ws, { stream: "listening", data: { streams: state.listening } });
        return;
      }
      default:
        bad(`unknown action ${JSON.stringify(frame.action ?? null)}`);
    }
  }

  onClose(ws: WebSocket, code: number, reason: string): void {
    try {
      // 1005 / 1006 mean "no code": a close frame may not carry them back.
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {}
  }

  broadcast(update: AlpacaTradeUpdate): void {
    const text = JSON.stringify({ stream: "trade_updates", data: update });
    for (const ws of this.ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      if (state?.listening.includes("trade_updates")) {
        try {
          ws.send(text);
        } catch {}
      }
    }
  }

  /** Sends an in-app notification to every socket listening to `notifications`; returns how many. */
  notify(notification: InAppNotification): number {
    const text = JSON.stringify({ stream: "notifications", data: notification });
    let sockets = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      if (state?.listening.includes("notifications")) {
        try {
          ws.send(text);
          sockets++;
        } catch {}
      }
    }
    return sockets;
  }
}

/** The `data` of a `notifications` stream message. */
export interface InAppNotification {
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, string>;
  /** When the cause happened (ISO 8601). */
  at: string;
}

function send(ws: WebSocket, body: unknown): void {
  try {
    ws.send(JSON.stringify(body));
  } catch {}
}

/**
 * The market-data stream protocol (Alpaca's data stream, JSON): client actions and the server's control
 * messages, and the subscription arithmetic. Pure; the hub object and the edge use it.
 *
 * Client → server: `{"action":"auth","key","secret"}`, `{"action":"subscribe","trades":[...],
 * "quotes":[...],"bars":[...]}`, `{"action":"unsubscribe", ...}`. `"*"` subscribes to every symbol.
 * Server → client: arrays of messages, each with `T`: `success`, `error`, `subscription`, and the data
 * messages `t` (trade), `q` (quote), `b` (minute bar).
 */

export const CHANNELS = ["trades", "quotes", "bars"] as const;
export type Channel = (typeof CHANNELS)[number];

export type Subscriptions = Record<Channel, string[]>;

export function emptySubscriptions(): Subscriptions {
  return { trades: [], quotes: [], bars: [] };
}

/** Alpaca's error codes. */
export const STREAM_ERRORS = {
  invalidSyntax: { code: 400, msg: "invalid syntax" },
  notAuthenticated: { code: 401, msg: "not authenticated" },
  authFailed: { code: 402, msg: "auth failed" },
  alreadyAuthenticated: { code: 403, msg: "already authenticated" },
  authTimeout: { code: 404, msg: "auth timeout" },
  symbolLimit: { code: 405, msg: "symbol limit exceeded" },
  connectionLimit: { code: 406, msg: "connection limit exceeded" },
  slowClient: { code: 407, msg: "slow client" },
  invalidSymbol: { code: 410, msg: "invalid subscribe action for this feed" },
  internal: { code: 500, msg: "internal error" },
} as const;

export type StreamError = (typeof STREAM_ERRORS)[keyof typeof STREAM_ERRORS];

export const errorMessage = (e: StreamError) => ({ T: "error", code: e.code, msg: e.msg });
export const successMessage = (msg: "connected" | "authenticated") => ({ T: "success", msg });
export const subscriptionMessage = (subs: Subscriptions) => ({ T: "subscription", ...subs });

export type ClientAction =
  | { action: "auth"; key?: string; secret?: string; token?: string }
  | { action: "subscribe" | "unsubscribe"; changes: Partial<Subscriptions> }
  | { action: "ping" };

/** Parse one client frame; `null` for anything that is not a known action with a valid body. */
export function parseClientAction(text: string, isSymbol: (s: string) => boolean): ClientAction | null {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof frame !== "object" || frame === null || Array.isArray(frame)) return null;
  const f = frame as Record<string, unknown>;
  if (f.action === "auth" || f.action === "authenticate") {
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const data = (typeof f.data === "object" && f.data !== null ? f.data : {}) as Record<string, unknown>;
    const out: ClientAction = { action: "auth" };
    const key = str(f.key) ?? str(data.key_id);
    const secret = str(f.secret) ?? str(data.secret_key);
    const token = str(f.token) ?? str(data.oauth_token);
    if (key !== undefined) out.key = key;
    if (secret !== undefined) out.secret = secret;
    if (token !== undefined) out.token = token;
    return out;
  }
  if (f.action === "ping") return { action: "ping" };
  if (f.action !== "subscribe" && f.action !== "unsubscribe") return null;
  const changes: Partial<Subscriptions> = {};
  for (const channel of CHANNELS) {
    const list = f[channel];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length > 1000) return null;
    const symbols: string[] = [];
    for (const s of list) {
      if (typeof s !== "string") return null;
      const sym = s.trim().toUpperCase();
      if (sym !== "*" && !isSymbol(sym)) return null;
      if (!symbols.includes(sym)) symbols.push(sym);
    }
    changes[channel] = symbols;
  }
  return { action: f.action, changes };
}

/** Subscriptions after adding (`subscribe`) or removing (`unsubscribe`) symbols, sorted. */
export function applySubscription(
  current: Subscriptions,
  action: "subscribe" | "unsubscribe",
  changes: Partial<Subscriptions>,
): Subscriptions {
  const next = emptySubscriptions();
  for (const channel of CHANNELS) {
    const set = new Set(current[channel]);
    for (const s of changes[channel] ?? []) {
      if (action === "subscribe") set.add(s);
      else set.delete(s);
    }
    next[channel] = [...set].sort();
  }
  return next;
}

/** Whether `subs` wants `channel` messages of `symbol`. */
export function wants(subs: Subscriptions, channel: Channel, symbol: string): boolean {
  const list = subs[channel];
  return list.includes("*") || list.includes(symbol);
}

/** Every symbol the subscriptions name explicitly, and whether any channel uses the wildcard. */
export function subscribedSymbols(subs: Subscriptions): { symbols: Set<string>; wildcard: boolean } {
  const symbols = new Set<string>();
  let wildcard = false;
  for (const channel of CHANNELS) {
    for (const s of subs[channel]) {
      if (s === "*") wildcard = true;
      else symbols.add(s);
    }
  }
  return { symbols, wildcard };
}

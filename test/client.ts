// A small HTTP / WebSocket client for integration tests: a trader that registers, signs in and trades
// through the public API of the worker under test.
import { inject } from "vitest";
import WebSocket from "ws";

export const baseUrl = inject("baseUrl");

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

let ipCounter = 0;
const runId = Math.floor(Math.random() * 200) + 20;
/** A distinct client address per trader, so per-IP auth limits do not couple unrelated tests. */
export const freshIp = () => `10.${runId}.${Math.floor(ipCounter / 250) + 100}.${(ipCounter++ % 250) + 1}`;

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; ip?: string } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.ip) headers["CF-Connecting-IP"] = opts.ip;
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body:
      opts.body === undefined
        ? undefined
        : typeof opts.body === "string"
          ? opts.body
          : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = {};
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { raw: text };
    }
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

export const PASSWORD = "Str0ng-enough-pw";
let emailCounter = 0;

export interface Trader {
  id: string;
  email: string;
  token: string;
  ip: string;
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<Reply<T>>;
}

export async function newTrader(tag = "trader"): Promise<Trader> {
  const email = `${tag}-${Date.now().toString(36)}-${emailCounter++}@example.test`;
  const ip = freshIp();
  const res = await api<{ access_token: string; user: { id: string } }>("POST", "/v1/auth/register", {
    ip,
    body: { email, password: PASSWORD, display_name: tag },
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  const token = res.body.access_token;
  return {
    id: res.body.user.id,
    email,
    token,
    ip,
    call: (method, path, body) => api(method, path, { token, ip, body }),
  };
}

/** A WebSocket that buffers every JSON message it receives, with a helper to wait for one. */
export interface JsonSocket {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  next(match: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  send(body: unknown): void;
  close(): Promise<void>;
}

export function openSocket(path: string, headers: Record<string, string> = {}): Promise<JsonSocket> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}${path}`, { headers });
  const messages: Record<string, unknown>[] = [];
  const waiters: {
    match: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }[] = [];
  let seen = 0;
  ws.on("message", (data) => {
    const m = JSON.parse(data.toString()) as Record<string, unknown>;
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.match(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const socket: JsonSocket = {
    ws,
    messages,
    next(match, timeoutMs = 10_000) {
      const found = messages.slice(seen).find(match);
      if (found) {
        seen = messages.indexOf(found) + 1;
        return Promise.resolve(found);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`)),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (m) => {
            clearTimeout(timer);
            seen = messages.indexOf(m) + 1;
            resolve(m);
          },
        });
      });
    },
    send: (body) => ws.send(JSON.stringify(body)),
    close: () =>
      new Promise((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once("close", () => resolve());
        ws.close();
      }),
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(socket));
    ws.once("error", reject);
  });
}

/**
 * An access token of the seeded admin (the test stack runs the default seeds, demo users included), for
 * admin routes such as share grants and market control.
 */
export async function adminToken(): Promise<string> {
  const { DEMO_USERS } = await import("../scripts/stack/seed-users.ts");
  const admin = DEMO_USERS.find((u) => u.role === "admin");
  if (!admin) throw new Error("no seeded admin");
  const login = await api<{ access_token: string }>("POST", "/v1/auth/login", {
    ip: freshIp(),
    body: { email: admin.email, password: admin.password },
  });
  if (login.status !== 200)
    throw new Error(`admin login failed: ${login.status} ${JSON.stringify(login.body)}`);
  return login.body.access_token;
}

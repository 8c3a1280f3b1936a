/**
 * Setup before the measured window (never part of the headline): register the traders (PBKDF2 in the
 * worker, so a few at a time), sign the admin in, and grant each trader shares of the symbols it watches
 * so that a long-only market has sellers from the first second.
 */
import type { HttpClient } from "./http.ts";
import type { MarketView } from "./market.ts";
import type { Credentials } from "./trader.ts";

export const TRADER_PASSWORD = "LoadTest-pw-2026";
const ADMIN = { email: "admin@prepx.dev", password: "prepx-admin-2026" };

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A distinct private address per trader (10.x.y.z), sent as CF-Connecting-IP. */
export function traderIp(runSalt: number, index: number): string {
  return `10.${(runSalt % 200) + 20}.${Math.floor(index / 250) % 256}.${(index % 250) + 1}`;
}

interface TokenBody {
  access_token?: string;
  refresh_token?: string;
  user?: { id?: string };
}

async function signIn(
  http: HttpClient,
  email: string,
  password: string,
  ip: string,
  register: boolean,
): Promise<{ userId: string; accessToken: string; refreshToken: string }> {
  const headers = { "cf-connecting-ip": ip };
  for (let attempt = 0; ; attempt++) {
    let r = register
      ? await http.request("POST", "/v1/auth/register", {
          body: { email, password, display_name: email.split("@")[0] },
          headers,
        })
      : await http.request("POST", "/v1/auth/login", { body: { email, password }, headers });
    if (register && r.status === 409) {
      r = await http.request("POST", "/v1/auth/login", { body: { email, password }, headers });
    }
    const b = r.body as TokenBody | undefined;
    if ((r.status === 200 || r.status === 201) && b?.access_token && b.refresh_token) {
      // Login answers only the tokens: the user id is the access token's subject.
      const userId = b.user?.id ?? subjectOf(b.access_token);
      return { userId, accessToken: b.access_token, refreshToken: b.refresh_token };
    }
    if (attempt >= 4 || (r.status >= 400 && r.status < 500 && r.status !== 429)) {
      throw new Error(`sign-in of ${email} failed: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
}

/** The `sub` claim of a JWT (read, not verified: the server verifies it). */
export function subjectOf(jwt: string): string {
  const payload = jwt.split(".")[1] ?? "";
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sub?: string };
  if (!claims.sub) throw new Error("access token without a subject");
  return claims.sub;
}

export async function adminToken(http: HttpClient, ip: string): Promise<string> {
  return (await signIn(http, ADMIN.email, ADMIN.password, ip, false)).accessToken;
}

export async function registerTraders(
  http: HttpClient,
  opts: { runId: string; runSalt: number; from: number; to: number; concurrency: number },
  progress: (done: number) => void,
): Promise<Credentials[]> {
  const indexes = Array.from({ length: opts.to - opts.from }, (_, i) => opts.from + i);
  let done = 0;
  return pool(indexes, opts.concurrency, async (index) => {
    const email = `lt-${opts.runId}-${index}@loadtest.prepx.dev`.toLowerCase();
    const ip = traderIp(opts.runSalt, index);
    const t = await signIn(http, email, TRADER_PASSWORD, ip, true);
    progress(++done);
    return { index, email, password: TRADER_PASSWORD, ip, ...t };
  });
}

/** Grants `qty` shares of each symbol at its reference price (capital in kind, no PnL); one result per grant. */
export async function grantShares(
  http: HttpClient,
  admin: string,
  grants: { userId: string; symbol: string; qty: number }[],
  market: MarketView,
  concurrency: number,
): Promise<{ ok: boolean; status: number }[]> {
  return pool(grants, concurrency, async (g) => {
    const info = market.of(g.symbol);
    const r = await http.request("POST", `/admin/users/${g.userId}/grants`, {
      body: {
        symbol: g.symbol,
        qty: market.qty(g.symbol, g.qty),
        price: market.price(g.symbol, info.referenceTicks),
      },
      headers: { authorization: `Bearer ${admin}` },
    });
    return { ok: r.status === 200, status: r.status };
  });
}

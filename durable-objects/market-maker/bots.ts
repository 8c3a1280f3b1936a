/**
 * The bots' accounts as the market maker sees them: ordinary UserSessions (one per bot id), read and
 * driven through the same RPC the trading API uses, so every bot order goes through the account's risk
 * checks and ledger and then through the OrderBook like any user's.
 * @internal
 */
import { parseInSteps, parseMicros, parseStep } from "../../shared/decimal.ts";
import { priceToTicks } from "../../shared/engine/rules.ts";
import type { Side } from "../../shared/engine/types.ts";
import { hashSeed } from "../../shared/market/prng.ts";
import type { RestingQuote } from "../../shared/market/quoting.ts";
import { DEFAULT_SYMBOLS, type SymbolSpec } from "../../shared/symbols.ts";
import type { Env } from "../../workers/env.ts";

/**
 * A bot's account id: a UUID derived from its name (`mm-EPIC`, `nt-EPIC-1`), so bots are ordinary
 * accounts everywhere user ids must be UUIDs (history in Postgres, admin routes) and the same bot gets
 * the same id on every deploy. Format: the 128-bit cyrb128 hash of the name as a version-8 (custom)
 * RFC 9562 UUID.
 */
export function botUserId(name: string): string {
  const hex = hashSeed(`prepx-bot:${name}`)
    .map((n) => n.toString(16).padStart(8, "0"))
    .join("");
  const variant = ((Number.parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The market maker's account id for a symbol (the bot named `mm-<SYMBOL>`). */
export function makerBotId(symbol: string): string {
  return botUserId(`mm-${symbol}`);
}

/** The account id of noise taker `n` (1-based) of a symbol (the bot named `nt-<SYMBOL>-<n>`). */
export function takerBotId(symbol: string, n: number): string {
  return botUserId(`nt-${symbol}-${n}`);
}

/** Most noise takers a symbol may have (config `noise.takers`). */
export const MAX_TAKERS = 20;

let botNames: Map<string, string> | null = null;

/** The bot name (`mm-EPIC`, `nt-EPIC-2`) of an account id, or null when it is not a bot of a listed symbol. */
export function botNameOf(userId: string): string | null {
  if (botNames === null) {
    botNames = new Map();
    for (const { symbol } of DEFAULT_SYMBOLS) {
      botNames.set(makerBotId(symbol), `mm-${symbol}`);
      for (let n = 1; n <= MAX_TAKERS; n++) botNames.set(takerBotId(symbol, n), `nt-${symbol}-${n}`);
    }
  }
  return botNames.get(userId.toLowerCase()) ?? null;
}

/** Whether a user id belongs to a market bot (for UIs and reports that want to leave them out). */
export function isBotId(userId: string): boolean {
  return botNameOf(userId) !== null;
}

export function sessionOf(env: Env, botId: string) {
  return env.USER_SESSION.get(env.USER_SESSION.idFromName(botId));
}

export interface BotAccount {
  cashMicros: number;
  buyingPowerMicros: number;
  positionLots: number;
  availableLots: number;
}

/** Alpaca order fields the maker reads. */
interface OrderLike {
  id: string;
  side: string;
  limit_price: string | null;
  qty: string | null;
  filled_qty: string;
  created_at: string;
  symbol: string;
}

/** The bot's open limit orders in `spec`'s symbol as resting quotes (malformed rows are skipped). */
export function restingQuotes(spec: SymbolSpec, orders: readonly OrderLike[]): RestingQuote[] {
  const out: RestingQuote[] = [];
  for (const o of orders) {
    if (o.symbol !== spec.symbol || o.limit_price === null || o.qty === null) continue;
    const price = priceToTicks(spec, o.limit_price);
    if (!price.ok) continue;
    const remaining = lotsOf(spec, o.qty) - lotsOf(spec, o.filled_qty);
    if (remaining <= 0) continue;
    out.push({
      orderId: o.id,
      side: o.side as Side,
      price: price.value,
      remainingLots: remaining,
      createdAt: Date.parse(o.created_at) || 0,
    });
  }
  return out;
}

/** Cash and position of a bot from its account and position views. */
export function botAccount(
  spec: SymbolSpec,
  account: { cash: string; buying_power: string },
  position: { qty: string; qty_available: string } | null,
): BotAccount {
  const cash = parseMicros(account.cash, { allowNegative: true });
  const bp = parseMicros(account.buying_power, { allowNegative: true });
  return {
    cashMicros: cash.ok ? cash.value : 0,
    buyingPowerMicros: bp.ok ? bp.value : 0,
    positionLots: position ? lotsOf(spec, position.qty) : 0,
    availableLots: position ? lotsOf(spec, position.qty_available) : 0,
  };
}

/** A decimal quantity in whole lots; 0 for "0", malformed or negative values. */
export function lotsOf(spec: Pick<SymbolSpec, "lotSize">, qty: string): number {
  const step = parseStep(spec.lotSize);
  if (!step.ok) return 0;
  const parsed = parseInSteps(qty, step.value);
  return parsed.ok && parsed.value > 0 ? parsed.value : 0;
}

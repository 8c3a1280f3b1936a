/**
 * Starting the simulated market by itself: the cron trigger (`scheduled`, every minute in production)
 * and the first request an isolate serves (local `wrangler dev` runs no cron) ask each symbol's
 * MarketMaker to `ensureRunning`: a market never started starts with its defaults, a running one whose
 * alarm went missing is re-armed, one an admin stopped stays stopped.
 *
 * `MARKET_SIM_ENABLED = "false"` turns all of this off (the integration tests set it, and start the
 * market of their own symbol through the admin API).
 */
import { DEFAULT_SYMBOLS, findSymbol } from "../../../shared/symbols.ts";
import type { Env } from "../../env.ts";

export function marketEnabled(env: Pick<Env, "MARKET_SIM_ENABLED">): boolean {
  return (env.MARKET_SIM_ENABLED ?? "true").trim().toLowerCase() !== "false";
}

/** The symbols the market runs by itself: `MARKET_SYMBOLS` (listed ones only), else every listed symbol. */
export function marketSymbols(env: Pick<Env, "MARKET_SYMBOLS">): string[] {
  const raw = (env.MARKET_SYMBOLS ?? "").split(",").map((s) => s.trim().toUpperCase());
  const chosen = raw.filter((s) => s !== "" && findSymbol(s) !== undefined);
  return chosen.length > 0 ? chosen : DEFAULT_SYMBOLS.map((s) => s.symbol);
}

export function marketMaker(env: Env, symbol: string) {
  return env.MARKET_MAKER.get(env.MARKET_MAKER.idFromName(symbol));
}

/** Ask every market symbol's maker to run; failures are logged, not thrown (the next call retries). */
export async function ensureMarket(env: Env): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (!marketEnabled(env)) return out;
  await Promise.all(
    marketSymbols(env).map(async (symbol) => {
      try {
        out[symbol] = await marketMaker(env, symbol).ensureRunning();
      } catch (err) {
        out[symbol] = "error";
        console.error(
          JSON.stringify({ level: "error", msg: "market autostart", symbol, error: String(err) }),
        );
      }
    }),
  );
  return out;
}

let kicked = false;

/** Once per isolate, on its first request: {@link ensureMarket} in the background. */
export function kickMarketOnce(env: Env, ctx: Pick<ExecutionContext, "waitUntil">): void {
  if (kicked || !marketEnabled(env)) return;
  kicked = true;
  ctx.waitUntil(ensureMarket(env));
}

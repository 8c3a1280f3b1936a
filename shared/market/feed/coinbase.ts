/**
 * Coinbase Exchange public WebSocket feed (`wss://ws-feed.exchange.coinbase.com`): the `ticker` channel
 * (best bid / offer with the last trade) and the `matches` channel (every trade), for one product mapped
 * onto one PrepX symbol.
 *
 * Message formats (https://docs.cdp.coinbase.com/exchange/docs/websocket-channels):
 * - `ticker`: `{type, sequence, product_id, price, best_bid, best_bid_size, best_ask, best_ask_size, side,
 *   time, trade_id, last_size}` → a {@link FeedQuote} (its `price` is a trade also reported by `matches`,
 *   so it is not repeated as a trade);
 * - `match` / `last_match`: `{type, trade_id, sequence, time, product_id, size, price, side}` → a
 *   {@link FeedTrade}. Coinbase's `side` is the **maker's** side, so the taker is the other one;
 * - `subscriptions`, `heartbeat`, `error` and anything unknown → nothing.
 *
 * Prices and sizes are scaled exactly (`priceScale`, `qtyScale`, then the symbol's tick / lot size), e.g.
 * BTC-USD at 67,012.35 with `priceScale` "0.001" quotes EPIC at 67.01.
 */
import { isDecimal, isoToMs, toSteps } from "./scale.ts";
import type { FeedAdapter, FeedEvent } from "./types.ts";

export const COINBASE_FEED_URL = "wss://ws-feed.exchange.coinbase.com";

export interface CoinbaseMapping {
  /** Coinbase product id, e.g. "BTC-USD". */
  product: string;
  /** The PrepX symbol it drives. */
  symbol: string;
  tickSize: string;
  lotSize: string;
  /** External price × priceScale = PrepX price (decimal string, e.g. "0.001"). */
  priceScale: string;
  /** External size × qtyScale = PrepX quantity (decimal string, e.g. "100"). */
  qtyScale: string;
  /** Override of {@link COINBASE_FEED_URL} (e.g. the sandbox). */
  url?: string;
}

type Raw = Record<string, unknown>;

export function coinbaseAdapter(mapping: CoinbaseMapping): FeedAdapter {
  const source = "coinbase";
  const price = (v: unknown) => (isDecimal(v) ? toSteps(v, mapping.priceScale, mapping.tickSize) : null);
  const qty = (v: unknown) => (isDecimal(v) ? toSteps(v, mapping.qtyScale, mapping.lotSize) : null);
  const seqOf = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null);

  return {
    source,
    symbol: mapping.symbol,
    url: mapping.url ?? COINBASE_FEED_URL,
    subscribeFrames: () => [
      JSON.stringify({
        type: "subscribe",
        product_ids: [mapping.product],
        channels: ["ticker", "matches", "heartbeat"],
      }),
    ],
    normalize(message: unknown): FeedEvent[] {
      if (typeof message !== "object" || message === null || Array.isArray(message)) return [];
      const m = message as Raw;
      if (m.product_id !== mapping.product) return [];
      const sourceSeq = seqOf(m.sequence);
      const ts = isoToMs(m.time);
      if (sourceSeq === null || ts === null) return [];
      if (m.type === "ticker") {
        const bidTicks = price(m.best_bid);
        const askTicks = price(m.best_ask);
        const bidLots = qty(m.best_bid_size) ?? 0;
        const askLots = qty(m.best_ask_size) ?? 0;
        if (bidTicks === null || askTicks === null || bidTicks <= 0 || askTicks <= 0) return [];
        return [
          {
            kind: "quote",
            symbol: mapping.symbol,
            source,
            sourceSeq,
            ts,
            bidTicks,
            bidLots,
            askTicks,
            askLots,
          },
        ];
      }
      if (m.type === "match" || m.type === "last_match") {
        const priceTicks = price(m.price);
        const qtyLots = qty(m.size);
        const tradeId = seqOf(m.trade_id);
        if (priceTicks === null || priceTicks <= 0 || qtyLots === null || tradeId === null) return [];
        const makerSide = m.side === "buy" || m.side === "sell" ? m.side : null;
        return [
          {
            kind: "trade",
            symbol: mapping.symbol,
            source,
            id: `${source}:${mapping.product}:${tradeId}`,
            sourceSeq,
            ts,
            priceTicks,
            qtyLots,
            takerSide: makerSide === null ? null : makerSide === "buy" ? "sell" : "buy",
          },
        ];
      }
      return [];
    },
  };
}

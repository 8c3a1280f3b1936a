/**
 * A deterministic order flow for one book: limit orders around a centre price (many of them crossing),
 * some IOC and market orders, and cancels of earlier orders. Used by tests and by the benchmark.
 * Pure: the same options give the same commands.
 */
import type { BookCommand } from "./commands.ts";

export interface WorkloadOptions {
  /** PRNG seed. */
  seed: number;
  /** Number of commands. */
  count: number;
  /** Prefix of order ids (make it unique per run against one book). */
  idPrefix: string;
  /** Centre price in ticks. */
  centre: number;
  /** Limit prices fall within centre ± spread ticks (so at most 2·spread + 1 levels per side). */
  spread?: number;
  /** Accounts trading ("acct-0" … ). */
  accounts?: number;
  /** Largest quantity in lots. */
  maxQty?: number;
  /** Share of cancels, in [0, 1). */
  cancelShare?: number;
}

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function workload(options: WorkloadOptions): BookCommand[] {
  const random = prng(options.seed);
  const spread = options.spread ?? 10;
  const accounts = options.accounts ?? 20;
  const maxQty = options.maxQty ?? 100;
  const cancelShare = options.cancelShare ?? 0.2;
  const int = (n: number) => Math.floor(random() * n);
  const placed: string[] = [];
  const out: BookCommand[] = [];
  for (let i = 0; i < options.count; i++) {
    const account = `acct-${int(accounts)}`;
    const r = random();
    if (r < cancelShare && placed.length > 0) {
      out.push({ kind: "cancel", orderId: placed[int(placed.length)] as string });
      continue;
    }
    const orderId = `${options.idPrefix}-${i}`;
    const side = random() < 0.5 ? "buy" : "sell";
    const qty = 1 + int(maxQty);
    const kind = random();
    if (kind < 0.05) {
      out.push({ kind: "place", orderId, account, side, type: "market", tif: "ioc", qty });
    } else {
      // Buys lean low and sells lean high, so about half of the limit orders rest and half cross.
      const offset = int(spread + 1) - Math.floor(spread / 3);
      const limitPrice = side === "buy" ? options.centre - offset : options.centre + offset;
      const tif = kind < 0.15 ? "ioc" : "gtc";
      out.push({ kind: "place", orderId, account, side, type: "limit", tif, qty, limitPrice });
      if (tif === "gtc") placed.push(orderId);
    }
  }
  return out;
}

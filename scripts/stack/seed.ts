import { type PgClient, withClient } from "./pg.ts";
import { demoUsersSeeder } from "./seed-users.ts";
import { type Logger, stackLog } from "./util.ts";

/**
 * Development seed data. Every seeder must be idempotent: `npm run db:seed` (and every `npm run dev`)
 * runs all of them again.
 *
 * To add one (e.g. demo users from the auth code), append to `seeders`:
 *
 * ```ts
 * import { seedDemoUsers } from "../../workers/auth/seed.ts"; // (a, b) => Promise<void>
 * export const seeders: Seeder[] = [symbolsSeeder, { name: "demo users", run: seedDemoUsers }];
 * ```
 * or pass your own list: `runSeeds({ ...urls, seeders: [...seeders, mySeeder] })`.
 */
export interface SeedContext {
  /** Connected to the global database (`prepx`), as the application role. */
  global: PgClient;
  /** Connection strings of the shard databases, in shard order (open what you need). */
  shardUrls: string[];
  log: Logger;
}

export interface Seeder {
  name: string;
  run(ctx: SeedContext): Promise<void>;
}

export interface SeedSymbol {
  symbol: string;
  name: string;
  tickSize: string;
  lotSize: string;
  minQty: string;
  maxQty: string;
  minNotional: string;
  priceBandBps: number;
  referencePrice: string;
}

const demoSymbol = (symbol: string, name: string, referencePrice: string): SeedSymbol => ({
  symbol,
  name,
  tickSize: "0.01",
  lotSize: "1",
  minQty: "1",
  maxQty: "100000",
  minNotional: "1.00",
  priceBandBps: 1000,
  referencePrice,
});

/** The demo instruments: tick 0.01, lot 1, ±10% price band. */
export const SEED_SYMBOLS: readonly SeedSymbol[] = [
  demoSymbol("ACME", "Acme Corporation", "100.00"),
  demoSymbol("BOLT", "Bolt Energy", "42.50"),
  demoSymbol("CRUX", "Crux Semiconductors", "250.00"),
  demoSymbol("DYNA", "Dyna Robotics", "18.75"),
  demoSymbol("EPIC", "Epic Media Group", "73.20"),
];

/** Inserts the demo symbols that are missing; existing rows (maybe halted or edited) are left alone. */
export const symbolsSeeder: Seeder = {
  name: "symbols",
  async run({ global, log }) {
    let inserted = 0;
    for (const s of SEED_SYMBOLS) {
      const { rowCount } = await global.query(
        `INSERT INTO symbols (symbol, name, tick_size, lot_size, min_qty, max_qty, min_notional,
                              price_band_bps, reference_price)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (symbol) DO NOTHING`,
        [
          s.symbol,
          s.name,
          s.tickSize,
          s.lotSize,
          s.minQty,
          s.maxQty,
          s.minNotional,
          s.priceBandBps,
          s.referencePrice,
        ],
      );
      inserted += rowCount ?? 0;
    }
    log(`seed: symbols — ${inserted} inserted, ${SEED_SYMBOLS.length - inserted} already there`);
  },
};

/** The seeders `npm run db:seed` runs, in order. Append new ones here. */
export const seeders: Seeder[] = [symbolsSeeder, demoUsersSeeder];

export interface SeedOptions {
  globalUrl: string;
  shardUrls: string[];
  seeders?: Seeder[];
  log?: Logger;
}

export async function runSeeds(opts: SeedOptions): Promise<void> {
  const log = opts.log ?? stackLog;
  await withClient({ connectionString: opts.globalUrl, application_name: "prepx-seed" }, async (global) => {
    for (const seeder of opts.seeders ?? seeders) {
      try {
        await seeder.run({ global, shardUrls: opts.shardUrls, log });
      } catch (err) {
        throw new Error(`seeder "${seeder.name}" failed: ${(err as Error).message}`, { cause: err });
      }
    }
  });
}

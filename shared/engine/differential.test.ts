/**
 * Model-based differential tests: random command sequences run through the fast engine and the simple
 * reference engine must produce identical events and state hashes, with the invariants of the issue
 * checked after every command. CI runs ≥ 100,000 commands; ENGINE_LONG=1 (`npm run test:long`) many more.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MatchingEngine } from "./engine.ts";
import { ReferenceEngine } from "./reference-engine.ts";
import {
  CommandBuilder,
  commandsOf,
  InvariantChecker,
  type Recipe,
  recipeArb,
  sameEvents,
  VARIANTS,
} from "./test-support.ts";
import type { EngineCommand, EngineEvent, EngineSnapshot } from "./types.ts";

const LONG = process.env.ENGINE_LONG === "1";
const RUNS = LONG ? 3_000 : 220;
const MAX_LEN = 900;
const SEED = process.env.ENGINE_SEED === undefined ? undefined : Number(process.env.ENGINE_SEED);

let commandsRun = 0;

function runAll(engine: { process(c: EngineCommand, out: EngineEvent[]): void }, commands: EngineCommand[]) {
  const out: EngineEvent[] = [];
  for (const c of commands) engine.process(c, out);
  return out;
}

const sequenceArb = fc.tuple(
  fc.nat(VARIANTS.length - 1),
  fc.array(recipeArb, { minLength: 200, maxLength: MAX_LEN, size: "max" }),
);

describe("fast engine against the reference engine", () => {
  it("emits identical events and state for random command sequences, with every invariant holding", () => {
    fc.assert(
      fc.property(sequenceArb, ([variant, recipes]) => {
        const { rules, opts, ids } = VARIANTS[variant] as (typeof VARIANTS)[number];
        const fast = new MatchingEngine(rules, opts);
        const reference = new ReferenceEngine(rules, opts);
        const checker = new InvariantChecker(fast);
        const builder = new CommandBuilder(ids);
        for (let i = 0; i < recipes.length; i++) {
          const cmd = builder.build(recipes[i] as Recipe);
          const fastOut: EngineEvent[] = [];
          const refOut: EngineEvent[] = [];
          fast.process(cmd, fastOut);
          reference.process(cmd, refOut);
          // A cheap comparison first; toEqual only to print the difference.
          if (!sameEvents(fastOut, refOut)) expect(fastOut).toEqual(refOut);
          checker.check(cmd, fastOut);
          builder.observe(fastOut);
          expect(fast.nextExpiryAt).toBe(reference.nextExpiryAt);
          if (i % 64 === 63) expect(fast.stateHash()).toBe(reference.stateHash());
        }
        expect(fast.stateHash()).toBe(reference.stateHash());
        expect(fast.snapshot()).toEqual(reference.snapshot());
        commandsRun += recipes.length;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.log(`differential: ${commandsRun} commands in ${RUNS} sequences`);
    expect(commandsRun).toBeGreaterThanOrEqual(LONG ? 1_000_000 : 100_000);
  }, 600_000);
});

describe("determinism", () => {
  it("replaying the same command log gives the same events and state hash", () => {
    fc.assert(
      fc.property(sequenceArb, ([variant, recipes]) => {
        const { rules, opts } = VARIANTS[variant] as (typeof VARIANTS)[number];
        const commands = commandsOf(variant, recipes);
        const a = new MatchingEngine(rules, opts);
        const b = new MatchingEngine(rules, opts);
        expect(runAll(b, commands)).toEqual(runAll(a, commands));
        expect(b.stateHash()).toBe(a.stateHash());
      }),
      { numRuns: LONG ? 500 : 40, seed: SEED },
    );
  }, 600_000);

  it("a book restored from a JSON snapshot behaves exactly like the original", () => {
    fc.assert(
      fc.property(sequenceArb, fc.nat(), ([variant, recipes], cutSeed) => {
        const { rules, opts } = VARIANTS[variant] as (typeof VARIANTS)[number];
        const commands = commandsOf(variant, recipes);
        const cut = cutSeed % (commands.length + 1);
        const original = new MatchingEngine(rules, opts);
        runAll(original, commands.slice(0, cut));
        const snap = JSON.parse(JSON.stringify(original.snapshot())) as EngineSnapshot;
        const restored = MatchingEngine.restore(snap);
        expect(restored.stateHash()).toBe(original.stateHash());
        expect(restored.snapshot()).toEqual(original.snapshot());
        const rest = commands.slice(cut);
        expect(runAll(restored, rest)).toEqual(runAll(original, rest));
        expect(restored.stateHash()).toBe(original.stateHash());
        expect(restored.depth(100)).toEqual(original.depth(100));
      }),
      { numRuns: LONG ? 500 : 60, seed: SEED },
    );
  }, 600_000);
});

describe("robustness", () => {
  it("never throws, whatever the command object holds", () => {
    const engine = new MatchingEngine(VARIANTS[0]?.rules as never, { referencePrice: 100 });
    const out: EngineEvent[] = [];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record(
            {
              kind: fc.constantFrom(
                "place",
                "cancel",
                "replace",
                "tick",
                "halt",
                "resume",
                "setReferencePrice",
              ),
              now: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(undefined)),
              orderId: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
              newOrderId: fc.oneof(fc.string(), fc.integer()),
              account: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
              side: fc.oneof(fc.constantFrom("buy", "sell"), fc.anything()),
              type: fc.oneof(fc.constantFrom("market", "limit", "stop", "stop_limit"), fc.anything()),
              tif: fc.oneof(fc.constantFrom("day", "gtc", "ioc", "fok"), fc.anything()),
              qty: fc.oneof(fc.integer(), fc.double(), fc.anything()),
              limitPrice: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.double(), fc.anything()),
              stopPrice: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.double(), fc.anything()),
              price: fc.oneof(fc.integer(), fc.double(), fc.anything()),
              postOnly: fc.anything(),
              stp: fc.anything(),
              expiresAt: fc.anything(),
            },
            { requiredKeys: ["kind"] },
          ),
        ),
        (cmd) => {
          const before = out.length;
          engine.process(cmd as EngineCommand, out);
          expect(out.length).toBeGreaterThanOrEqual(before);
        },
      ),
      { numRuns: 3_000, seed: SEED },
    );
    expect(engine.depth(1).bids.length + engine.depth(1).asks.length).toBeGreaterThanOrEqual(0);
  }, 120_000);
});

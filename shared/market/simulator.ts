/**
 * The reference-price simulator: one seeded, reproducible price path per symbol.
 *
 * Model (per step of `stepMs`): a discretised geometric Brownian motion with optional mean reversion,
 * Bernoulli-approximated Poisson jumps and a U-shaped intraday volatility profile:
 *
 * ```
 * S' = S × (1 + μ·Δt + κ·(A/S − 1)·Δt + σ·v(t)·√Δt·Z + J)
 * Z ~ N(0,1) (Irwin–Hall),  J = m + s·Z₂ with probability λ·Δt (else 0)
 * v(t) = 1 + a·((2x − 1)² − 1/3),  x = time of day (UTC) of the step in [0, 1)
 * ```
 *
 * Δt is in years (365.25 days); A is the anchor (the start price); v averages 1 over a day, so σ stays the
 * annual volatility. The state keeps `S` as a float64 in ticks; the **output is always an integer number
 * of ticks** (`max(minTicks, round(S))`), which is what reaches the book, the wire and storage.
 *
 * Reproducibility: the path depends only on the config and the step index (step k is at simulated time
 * `startMs + k × stepMs`, whatever the wall clock did). Every operation is `+ − × ÷` or `√` on float64,
 * each correctly rounded under IEEE 754, and the random numbers come from {@link Prng} (32-bit integers),
 * so the same seed gives the same path bit for bit on any engine. No `Math.exp` / `Math.log`.
 *
 * @example
 * ```ts
 * const config = simulatorConfig({ seed: "EPIC", startPriceTicks: 7_500, stepMs: 1_500, startMs: 0 });
 * let state = initialState(config);
 * state = advance(config, state, 10);   // ten steps
 * priceTicksOf(config, state);          // e.g. 7_503
 * ```
 */
import { Prng, type PrngState } from "./prng.ts";

const MS_PER_DAY = 86_400_000;
const MS_PER_YEAR = 365.25 * MS_PER_DAY;

export interface SimulatorConfig {
  /** Any string; equal seeds (with equal parameters) give equal paths. */
  seed: string;
  /** S₀ and the mean-reversion anchor, in ticks. */
  startPriceTicks: number;
  /** Simulated time of step 0 (ms since epoch): fixes the intraday profile of every later step. */
  startMs: number;
  /** Δt of one step in ms. */
  stepMs: number;
  /** σ, annualised (0.6 = 60 %). */
  annualVolatility: number;
  /** μ, annualised. */
  annualDrift: number;
  /** κ per year: pull towards the start price (0 = pure GBM). */
  meanReversionPerYear: number;
  /** λ: expected jumps per day. */
  jumpsPerDay: number;
  /** m: mean relative jump (0.01 = +1 %). */
  jumpMean: number;
  /** s: standard deviation of the relative jump. */
  jumpStdDev: number;
  /** a in v(t), from 0 (flat) to 1.5 (v from 0.5 at midday to 2 at the ends of the day). */
  intradayAmplitude: number;
  /** The smallest price the path may output, in ticks (≥ 1). */
  minPriceTicks: number;
}

export interface SimulatorState {
  /** Steps taken since step 0. */
  step: number;
  /** S in ticks (float64). */
  price: number;
  rng: PrngState;
  /** Jumps taken so far (for the status page and tests). */
  jumps: number;
}

export const SIMULATOR_DEFAULTS = {
  annualVolatility: 0.6,
  annualDrift: 0,
  meanReversionPerYear: 4,
  jumpsPerDay: 6,
  jumpMean: 0,
  jumpStdDev: 0.004,
  intradayAmplitude: 0.75,
  minPriceTicks: 1,
} as const;

export type SimulatorInput = Pick<SimulatorConfig, "seed" | "startPriceTicks" | "stepMs" | "startMs"> &
  Partial<Omit<SimulatorConfig, "seed" | "startPriceTicks" | "stepMs" | "startMs">>;

/** A full config from the required fields and the defaults. Throws on a value out of its range. */
export function simulatorConfig(input: SimulatorInput): SimulatorConfig {
  const config: SimulatorConfig = { ...SIMULATOR_DEFAULTS, ...input };
  const problem = checkSimulatorConfig(config);
  if (problem !== null) throw new RangeError(problem);
  return config;
}

/** The first problem of a config, or null. */
export function checkSimulatorConfig(c: SimulatorConfig): string | null {
  const finite = (v: number) => typeof v === "number" && Number.isFinite(v);
  if (typeof c.seed !== "string" || c.seed.length === 0 || c.seed.length > 200)
    return "seed must be 1–200 chars";
  if (!Number.isSafeInteger(c.startPriceTicks) || c.startPriceTicks < 1) return "startPriceTicks must be ≥ 1";
  if (!Number.isSafeInteger(c.startMs) || c.startMs < 0) return "startMs must be a non-negative integer";
  if (!Number.isSafeInteger(c.stepMs) || c.stepMs < 10 || c.stepMs > MS_PER_DAY) {
    return "stepMs must be an integer from 10 to 86,400,000";
  }
  if (!finite(c.annualVolatility) || c.annualVolatility < 0 || c.annualVolatility > 5) {
    return "annualVolatility must be in [0, 5]";
  }
  if (!finite(c.annualDrift) || Math.abs(c.annualDrift) > 5) return "annualDrift must be in [-5, 5]";
  if (!finite(c.meanReversionPerYear) || c.meanReversionPerYear < 0 || c.meanReversionPerYear > 10_000) {
    return "meanReversionPerYear must be in [0, 10000]";
  }
  if (!finite(c.jumpsPerDay) || c.jumpsPerDay < 0 || c.jumpsPerDay > 10_000) {
    return "jumpsPerDay must be in [0, 10000]";
  }
  if (!finite(c.jumpMean) || Math.abs(c.jumpMean) > 0.2) return "jumpMean must be in [-0.2, 0.2]";
  if (!finite(c.jumpStdDev) || c.jumpStdDev < 0 || c.jumpStdDev > 0.2)
    return "jumpStdDev must be in [0, 0.2]";
  if (!finite(c.intradayAmplitude) || c.intradayAmplitude < 0 || c.intradayAmplitude > 1.5) {
    return "intradayAmplitude must be in [0, 1.5]";
  }
  if (!Number.isSafeInteger(c.minPriceTicks) || c.minPriceTicks < 1) return "minPriceTicks must be ≥ 1";
  return null;
}

export function initialState(config: SimulatorConfig): SimulatorState {
  return { step: 0, price: config.startPriceTicks, rng: Prng.fromSeed(config.seed).state(), jumps: 0 };
}

/** The simulated time of step `k`. */
export function stepTime(config: SimulatorConfig, k: number): number {
  return config.startMs + k * config.stepMs;
}

/** v(t): the intraday volatility multiplier at `ms`; its average over a UTC day is 1. */
export function intradayFactor(amplitude: number, ms: number): number {
  const x = (((ms % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) / MS_PER_DAY;
  const u = 2 * x - 1;
  return 1 + amplitude * (u * u - 1 / 3);
}

/** The state after `steps` more steps (≥ 0). Pure: the input state is not changed. */
export function advance(config: SimulatorConfig, state: SimulatorState, steps: number): SimulatorState {
  if (!Number.isSafeInteger(steps) || steps < 0) throw new RangeError("steps must be a non-negative integer");
  if (steps === 0) return state;
  const rng = Prng.fromState(state.rng);
  const dt = config.stepMs / MS_PER_YEAR;
  const sqrtDt = Math.sqrt(dt);
  const jumpProbability = Math.min(1, (config.jumpsPerDay * config.stepMs) / MS_PER_DAY);
  const anchor = config.startPriceTicks;
  const floor = config.minPriceTicks;
  let price = state.price;
  let jumps = state.jumps;
  let step = state.step;
  for (let i = 0; i < steps; i++) {
    step++;
    const v = intradayFactor(config.intradayAmplitude, stepTime(config, step));
    const z = rng.normal();
    // Both draws are taken on every step, so the stream of normals does not depend on whether jumps fire.
    const jumpDraw = rng.uniform();
    const jumpSize = rng.normal();
    let r = config.annualDrift * dt + config.meanReversionPerYear * (anchor / price - 1) * dt;
    r += config.annualVolatility * v * sqrtDt * z;
    if (jumpDraw < jumpProbability) {
      r += config.jumpMean + config.jumpStdDev * jumpSize;
      jumps++;
    }
    // A step never more than halves or doubles the price, and never goes below the floor.
    if (r < -0.5) r = -0.5;
    if (r > 1) r = 1;
    price = price * (1 + r);
    if (price < floor) price = floor;
  }
  return { step, price, rng: rng.state(), jumps };
}

/** The output of the path at this state: integer ticks, never below `minPriceTicks`. */
export function priceTicksOf(config: SimulatorConfig, state: SimulatorState): number {
  return Math.max(config.minPriceTicks, Math.round(state.price));
}

/** The first `steps` outputs (ticks) of the path of `config`, step 1 first. */
export function simulatePath(config: SimulatorConfig, steps: number): number[] {
  const out: number[] = [];
  let state = initialState(config);
  for (let i = 0; i < steps; i++) {
    state = advance(config, state, 1);
    out.push(priceTicksOf(config, state));
  }
  return out;
}

/** How many steps are due at wall-clock time `now` (step k is due at `startMs + k × stepMs`). */
export function stepsDue(config: SimulatorConfig, state: SimulatorState, now: number): number {
  const target = Math.floor((now - config.startMs) / config.stepMs);
  return Math.max(0, target - state.step);
}

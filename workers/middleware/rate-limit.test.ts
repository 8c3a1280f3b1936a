import { describe, expect, it } from "vitest";
import type { Logger } from "../env.ts";
import { limiterAnswer, rateLimitHeaders } from "./rate-limit.ts";

describe("rate-limit headers", () => {
  const now = 1_800_000_000_000;

  it("report limit, remaining and whole seconds until the window frees up", () => {
    expect(rateLimitHeaders({ limit: 100, remaining: 42, reset: now + 12_300 }, false, now)).toEqual({
      "RateLimit-Limit": "100",
      "RateLimit-Remaining": "42",
      "RateLimit-Reset": "13",
    });
  });

  it("add Retry-After of at least one second when the request is refused", () => {
    const headers = rateLimitHeaders({ limit: 10, remaining: -1, reset: now + 200 }, true, now);
    expect(headers["RateLimit-Remaining"]).toBe("0");
    expect(headers["Retry-After"]).toBe("1");
    expect(rateLimitHeaders({ limit: 10, remaining: 0, reset: now + 61_000 }, true, now)["Retry-After"]).toBe(
      "61",
    );
  });
});

describe("a limiter's answer", () => {
  function recorder() {
    const warnings: string[] = [];
    const kept: Promise<unknown>[] = [];
    const log: Logger = { info: () => {}, warn: (msg) => warnings.push(msg), error: () => {} };
    return { warnings, kept, log, keepAlive: (p: Promise<unknown>) => kept.push(p) };
  }

  it("is the call's own when it comes in time", async () => {
    const r = recorder();
    expect(await limiterAnswer("t", Promise.resolve(7), r.log, r.keepAlive, 50)).toBe(7);
    expect(r.warnings).toEqual([]);
  });

  it("lets the request through, with a warning, when the limiter fails or is too slow", async () => {
    const failed = recorder();
    expect(
      await limiterAnswer("t", Promise.reject(new Error("down")), failed.log, failed.keepAlive, 50),
    ).toBe(undefined);
    expect(failed.warnings).toEqual(["rate limiter unavailable; request allowed"]);

    const slow = recorder();
    let finish: (v: number) => void = () => {};
    const call = new Promise<number>((resolve) => {
      finish = resolve;
    });
    expect(await limiterAnswer("t", call, slow.log, slow.keepAlive, 20)).toBe(undefined);
    expect(slow.warnings).toEqual(["rate limiter timed out; request allowed"]);
    // The slow call is kept alive to finish in the background.
    expect(slow.kept).toHaveLength(1);
    finish(1);
    await expect(slow.kept[0]).resolves.toBe(1);
  });
});

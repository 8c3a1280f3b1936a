import { describe, expect, it } from "vitest";
import { rateLimitHeaders } from "./rate-limit.ts";

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

import { describe, expect, it } from "vitest";
import { SYMBOL_PATTERN } from "../symbols.ts";
import {
  applySubscription,
  emptySubscriptions,
  parseClientAction,
  subscribedSymbols,
  wants,
} from "./data-stream.ts";

const isSymbol = (s: string) => SYMBOL_PATTERN.test(s);

describe("data stream protocol", () => {
  it("parses Alpaca's auth message, with key and secret or with a token", () => {
    expect(parseClientAction('{"action":"auth","key":"k","secret":"s"}', isSymbol)).toEqual({
      action: "auth",
      key: "k",
      secret: "s",
    });
    expect(parseClientAction('{"action":"auth","token":"jwt"}', isSymbol)).toEqual({
      action: "auth",
      token: "jwt",
    });
  });

  it("parses subscribe and unsubscribe, upper-casing and de-duplicating symbols", () => {
    expect(
      parseClientAction('{"action":"subscribe","trades":["epic","EPIC"],"quotes":["*"],"bars":[]}', isSymbol),
    ).toEqual({ action: "subscribe", changes: { trades: ["EPIC"], quotes: ["*"], bars: [] } });
    expect(parseClientAction('{"action":"unsubscribe","quotes":["DYNA"]}', isSymbol)).toEqual({
      action: "unsubscribe",
      changes: { quotes: ["DYNA"] },
    });
  });

  it("refuses frames that are not JSON, not an action, or name bad symbols", () => {
    for (const bad of [
      "nope",
      "[]",
      '{"action":"dance"}',
      '{"action":"subscribe","trades":"EPIC"}',
      '{"action":"subscribe","trades":["no such"]}',
    ]) {
      expect(parseClientAction(bad, isSymbol)).toBeNull();
    }
  });

  it("adds and removes subscriptions per channel", () => {
    let subs = applySubscription(emptySubscriptions(), "subscribe", {
      trades: ["EPIC", "DYNA"],
      quotes: ["*"],
    });
    expect(subs).toEqual({ trades: ["DYNA", "EPIC"], quotes: ["*"], bars: [] });
    expect(wants(subs, "quotes", "ACME")).toBe(true);
    expect(wants(subs, "bars", "EPIC")).toBe(false);
    subs = applySubscription(subs, "unsubscribe", { trades: ["DYNA"], quotes: ["*"] });
    expect(subs).toEqual({ trades: ["EPIC"], quotes: [], bars: [] });
    expect(subscribedSymbols(subs)).toEqual({ symbols: new Set(["EPIC"]), wildcard: false });
  });
});

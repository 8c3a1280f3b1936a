import { describe, expect, it } from "vitest";
import {
  formatClock,
  inWindow,
  isValidTimeZone,
  localMinutes,
  parseClock,
  quietUntil,
} from "./quiet-hours.ts";

const NIGHT = { start: parseClock("22:00") as number, end: parseClock("07:00") as number };
const LUNCH = { start: parseClock("12:00") as number, end: parseClock("13:30") as number };

describe("quiet hours", () => {
  it("read the wall clock of the user's time zone", () => {
    const at = Date.UTC(2026, 10, 20, 22, 10); // 23:10 in Madrid (CET), 17:10 in New York (EST)
    expect(formatClock(localMinutes(at, "Europe/Madrid"))).toBe("23:10");
    expect(formatClock(localMinutes(at, "America/New_York"))).toBe("17:10");
    expect(formatClock(localMinutes(at, "UTC"))).toBe("22:10");
  });

  it("span midnight when the start is after the end", () => {
    expect(inWindow(parseClock("23:59") as number, NIGHT)).toBe(true);
    expect(inWindow(parseClock("00:00") as number, NIGHT)).toBe(true);
    expect(inWindow(parseClock("06:59") as number, NIGHT)).toBe(true);
    expect(inWindow(parseClock("07:00") as number, NIGHT)).toBe(false);
    expect(inWindow(parseClock("21:59") as number, NIGHT)).toBe(false);
    expect(inWindow(parseClock("12:00") as number, LUNCH)).toBe(true);
    expect(inWindow(parseClock("13:30") as number, LUNCH)).toBe(false);
    expect(inWindow(600, { start: 600, end: 600 })).toBe(false);
  });

  it("end at the next local end time, the next day when they span midnight", () => {
    const lateEvening = Date.UTC(2026, 10, 20, 22, 10, 30); // 23:10:30 Madrid
    expect(quietUntil(lateEvening, NIGHT, "Europe/Madrid")).toBe(Date.UTC(2026, 10, 21, 6, 0));
    const earlyMorning = Date.UTC(2026, 10, 21, 4, 0); // 05:00 Madrid
    expect(quietUntil(earlyMorning, NIGHT, "Europe/Madrid")).toBe(Date.UTC(2026, 10, 21, 6, 0));
    expect(quietUntil(Date.UTC(2026, 10, 21, 12, 0), NIGHT, "Europe/Madrid")).toBeNull();
    expect(quietUntil(Date.UTC(2026, 10, 21, 12, 15), LUNCH, "UTC")).toBe(Date.UTC(2026, 10, 21, 13, 30));
    expect(quietUntil(Date.UTC(2026, 10, 21, 12, 15), null, "UTC")).toBeNull();
  });

  it("follow daylight-saving changes during the quiet hours", () => {
    // Europe/Madrid falls back on 25 Oct 2026 (03:00 CEST → 02:00 CET): 07:00 local is 06:00 UTC.
    expect(quietUntil(Date.UTC(2026, 9, 24, 21, 0), NIGHT, "Europe/Madrid")).toBe(
      Date.UTC(2026, 9, 25, 6, 0),
    );
    // It springs forward on 29 Mar 2026 (02:00 CET → 03:00 CEST): 07:00 local is 05:00 UTC.
    expect(quietUntil(Date.UTC(2026, 2, 28, 22, 0), NIGHT, "Europe/Madrid")).toBe(
      Date.UTC(2026, 2, 29, 5, 0),
    );
    // An end time the clock jumps over (02:30 that night) ends at the first instant after the jump.
    const until = quietUntil(Date.UTC(2026, 2, 28, 23, 30), { start: 0, end: 150 }, "Europe/Madrid");
    expect(until).toBe(Date.UTC(2026, 2, 29, 1, 0));
    expect(formatClock(localMinutes(until as number, "Europe/Madrid"))).toBe("03:00");
  });

  it("parse and format HH:MM and know which zones exist", () => {
    expect(parseClock("07:05")).toBe(425);
    expect(parseClock("24:00")).toBeNull();
    expect(parseClock("7:05")).toBeNull();
    expect(formatClock(1320)).toBe("22:00");
    expect(isValidTimeZone("Europe/Madrid")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus_Mons")).toBe(false);
  });
});

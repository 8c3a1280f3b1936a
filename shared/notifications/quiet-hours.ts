/**
 * Quiet hours: a daily window in the user's time zone during which notifications that leave the
 * platform (Web Push, email, SMS) wait; in-app delivery never waits. See docs/notifications.md.
 *
 * Times are minutes after local midnight. A window with `start > end` spans midnight (22:00–07:00).
 * Daylight-saving changes are handled through the time zone's actual offset at each instant.
 *
 * Pure: Intl only.
 */
import type { QuietHours } from "./types.ts";

const MINUTE = 60_000;
const DAY_MINUTES = 24 * 60;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterOf(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local wall-clock time of `at` in `timeZone`, as minutes after midnight. */
export function localMinutes(at: number, timeZone: string): number {
  const parts = formatterOf(timeZone).formatToParts(new Date(at));
  const hour = Number(parts.find((p) => p.type === "hour")?.value ?? "0");
  const minute = Number(parts.find((p) => p.type === "minute")?.value ?? "0");
  return (hour % 24) * 60 + minute;
}

/** Whether local time `minutes` lies in the window (start inclusive, end exclusive). */
export function inWindow(minutes: number, quiet: QuietHours): boolean {
  if (quiet.start === quiet.end) return false;
  return quiet.start < quiet.end
    ? minutes >= quiet.start && minutes < quiet.end
    : minutes >= quiet.start || minutes < quiet.end;
}

/**
 * When the quiet hours that `at` falls in end (ms since epoch), or null when `at` is not in quiet hours.
 * On a day when the end time does not exist (the clock jumps over it), the first instant after the jump.
 *
 * @example
 * // 23:10 in Madrid, quiet 22:00–07:00: the next 07:00 in Madrid
 * quietUntil(Date.UTC(2026, 10, 20, 22, 10), { start: 1320, end: 420 }, "Europe/Madrid"); // Date.UTC(2026, 10, 21, 6, 0)
 */
export function quietUntil(at: number, quiet: QuietHours | null, timeZone: string): number | null {
  if (!quiet) return null;
  const now = localMinutes(at, timeZone);
  if (!inWindow(now, quiet)) return null;
  const startOfMinute = at - (at % MINUTE);
  let candidate = startOfMinute + ((quiet.end - now + DAY_MINUTES) % DAY_MINUTES) * MINUTE;
  // The offset may differ at the candidate (a DST change in between): correct by the wall-clock error.
  for (let i = 0; i < 2; i++) {
    const local = localMinutes(candidate, timeZone);
    const error = ((quiet.end - local + DAY_MINUTES + DAY_MINUTES / 2) % DAY_MINUTES) - DAY_MINUTES / 2;
    if (error === 0) break;
    candidate += error * MINUTE;
  }
  // A non-existent local end time (spring forward) leaves us on either side of the jump: step forward out
  // of the window, then back to the first minute outside it.
  while (candidate <= at || inWindow(localMinutes(candidate, timeZone), quiet)) candidate += 15 * MINUTE;
  for (let i = 0; i < 120; i++) {
    const earlier = candidate - MINUTE;
    if (earlier <= at || inWindow(localMinutes(earlier, timeZone), quiet)) break;
    candidate = earlier;
  }
  return candidate;
}

/** "22:00" → 1320; null when not HH:MM in 00:00–23:59. */
export function parseClock(text: string): number | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** 1320 → "22:00". */
export function formatClock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

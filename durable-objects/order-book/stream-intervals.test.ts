import { describe, expect, it } from "vitest";
import {
  frameOf,
  INTERVAL_FRAME_MAX_CHARS,
  IntervalFrames,
  parseInterval,
  STREAM_INTERVALS_MS,
} from "./stream-intervals.ts";

describe("book stream update intervals", () => {
  it("accepts only the listed intervals, and absence as real time", () => {
    expect(parseInterval(null)).toBe(0);
    for (const ms of STREAM_INTERVALS_MS) expect(parseInterval(String(ms))).toBe(ms);
    for (const bad of ["", "0", "300", "-100", "1e3", "100.0", " 100", "0100", "99999", "abc"]) {
      expect(parseInterval(bad)).toBeNull();
    }
  });

  it("keeps every message, in order, for the intervals that have sockets, one frame each when due", () => {
    const frames = new IntervalFrames();
    const t = 1_750_000_000_000;
    frames.joined(250);
    frames.setSockets(1000, 2);
    expect(frames.sockets).toBe(3);
    frames.add(['{"seq":1}'], 9);
    // The first frame of a quiet interval is due at once.
    expect(frames.due(t)).toEqual([250, 1000]);
    expect(frames.take(250, t)).toBe('{"seq":1}');
    expect(frames.take(1000, t)).toBe('{"seq":1}');
    frames.add(['{"seq":2}', '{"seq":3}'], 21);
    frames.add(['{"seq":4}'], 9);
    expect(frames.due(t + 100)).toEqual([]);
    expect(frames.nextDueAt()).toBe(t + 250);
    expect(frames.due(t + 250)).toEqual([250]);
    expect(frames.take(250, t + 250)).toBe('[{"seq":2},{"seq":3},{"seq":4}]');
    expect(frames.nextDueAt()).toBe(t + 1000);
    // A subscribe sends everything waiting, whatever the time.
    expect(frames.due(t + 300, true)).toEqual([1000]);
    expect(frames.take(1000, t + 300)).toBe('[{"seq":2},{"seq":3},{"seq":4}]');
    expect(frames.take(1000, t + 300)).toBeNull();
    expect(frames.nextDueAt()).toBeNull();
  });

  it("keeps nothing for an interval without sockets", () => {
    const frames = new IntervalFrames();
    frames.add(['{"seq":1}'], 9);
    expect(frames.due(0, true)).toEqual([]);
    frames.joined(100);
    frames.add(['{"seq":2}'], 9);
    frames.setSockets(100, 0);
    expect(frames.due(0, true)).toEqual([]);
    expect(frames.sockets).toBe(0);
  });

  it("sends a frame early once it would grow past the size limit", () => {
    const frames = new IntervalFrames();
    frames.joined(1000);
    frames.add(['{"seq":1}'], 9);
    frames.take(1000, 5_000);
    const big = `{"seq":2,"pad":"${"x".repeat(INTERVAL_FRAME_MAX_CHARS)}"}`;
    frames.add([big], big.length);
    expect(frames.due(5_010)).toEqual([1000]);
  });

  it("frames one message as itself and several as a JSON array", () => {
    expect(frameOf(['{"a":1}'])).toBe('{"a":1}');
    expect(JSON.parse(frameOf(['{"a":1}', '{"b":2}']))).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it("refuses an interval it does not serve", () => {
    expect(() => new IntervalFrames().joined(300)).toThrow(RangeError);
  });
});

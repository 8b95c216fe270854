import { describe, it } from "node:test";
import { expect } from "expect";
import {
  latencyBucket,
  MAX_WINDOW_SECONDS,
  RequestSeries,
  SERIES_SECONDS,
  statusClassIndex,
} from "./request_series.ts";

/** An arbitrary Unix second, a multiple of 60 so steps align on it. */
const T0 = 1_800_000_000 - (1_800_000_000 % 60);
const ms = (sec: number, frac = 0.5) => (sec + frac) * 1000;

describe("RequestSeries", () => {
  it("reports each complete second by status class, never the second in progress", () => {
    const s = new RequestSeries();
    s.record(statusClassIndex(200), 0.01, ms(T0));
    s.record(statusClassIndex(204), 0.01, ms(T0, 0.99));
    s.record(statusClassIndex(503), 0.01, ms(T0 + 2));
    s.record(statusClassIndex(404), 0.01, ms(T0 + 3)); // in progress at query time
    s.record(statusClassIndex(999), 0.01, ms(T0 + 1));
    const doc = s.stats(4, 1, ms(T0 + 3, 0.2));
    expect(doc.start).toBe(T0 - 1);
    expect(doc.end).toBe(T0 + 3);
    expect(doc.requestsPerSecond).toEqual([0, 2, 1, 1]);
    expect(doc.responses["2xx"]).toEqual([0, 2, 0, 0]);
    expect(doc.responses["5xx"]).toEqual([0, 0, 0, 1]);
    expect(doc.responses.other).toEqual([0, 0, 1, 0]);
    expect(doc.responses["4xx"]).toEqual([0, 0, 0, 0]);
    expect(doc.totals.requests).toBe(4);
    expect(doc.totals.responses).toEqual({
      "1xx": 0,
      "2xx": 2,
      "3xx": 0,
      "4xx": 0,
      "5xx": 1,
      other: 1,
    });
    expect(doc.totals.requestsPerSecond).toBe(1);
  });

  it("sums steps aligned to multiples of the step and divides by it for the rate", () => {
    const s = new RequestSeries();
    for (let sec = T0; sec < T0 + 20; sec++) s.record(2, 0.001, ms(sec));
    const doc = s.stats(17, 5, ms(T0 + 21)); // 17 s → 3 whole steps
    expect(doc.windowSeconds).toBe(15);
    expect(doc.stepSeconds).toBe(5);
    expect(doc.end).toBe(T0 + 20);
    expect(doc.start).toBe(T0 + 5);
    expect(doc.responses["2xx"]).toEqual([5, 5, 5]);
    expect(doc.requestsPerSecond).toEqual([1, 1, 1]);
  });

  it("wraps around: after several laps each second holds only its own requests", () => {
    const s = new RequestSeries();
    const laps = 3.5;
    const last = T0 + Math.floor(SERIES_SECONDS * laps);
    const expected = (sec: number) => (sec % 7) + 1;
    for (let sec = T0; sec <= last; sec++) {
      for (let i = 0; i < expected(sec); i++) s.record(2, 0.002, ms(sec, i / 10));
    }
    const doc = s.stats(MAX_WINDOW_SECONDS, 1, ms(last + 1, 0));
    expect(doc.requestsPerSecond.length).toBe(MAX_WINDOW_SECONDS);
    const want = Array.from({ length: MAX_WINDOW_SECONDS }, (_, i) => expected(doc.start + i));
    expect(doc.requestsPerSecond).toEqual(want);
    expect(doc.end).toBe(last + 1);
  });

  it("does not report a slot's old second as the one that maps to it a lap later", () => {
    const s = new RequestSeries();
    s.record(5, 0.5, ms(T0));
    // T0 + SERIES_SECONDS shares T0's slot, which still holds T0's request.
    const later = s.stats(MAX_WINDOW_SECONDS, 1, ms(T0 + SERIES_SECONDS + 1));
    expect(later.totals.requests).toBe(0);
    expect(later.latencySeconds.p99.every((v) => v === null)).toBe(true);
    // A gap: seconds nobody wrote stay zero while older ones in the window remain.
    s.record(2, 0.5, ms(T0 + 10));
    const doc = s.stats(30, 1, ms(T0 + 20));
    expect(doc.totals.requests).toBe(2);
    expect(doc.responses["5xx"][doc.requestsPerSecond.length - 20]).toBe(1);
  });

  it("keeps a fixed memory however much it records", () => {
    const s = new RequestSeries();
    const before = s.memoryBytes;
    expect(before).toBeLessThan(400 * 1024);
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const heap0 = Deno.memoryUsage().heapUsed;
    for (let sec = T0; sec < T0 + 5000; sec++) {
      for (let i = 0; i < 50; i++) s.record(i % 6, (i + 1) / 1000, ms(sec, i / 50));
    }
    gc?.();
    const grown = Deno.memoryUsage().heapUsed - heap0;
    expect(s.memoryBytes).toBe(before);
    // 250 000 records: any per-record allocation kept alive would show up here.
    expect(grown).toBeLessThan(2 * 1024 * 1024);
    expect(s.stats(MAX_WINDOW_SECONDS, 1, ms(T0 + 5000, 0)).totals.requests).toBe(
      MAX_WINDOW_SECONDS * 50,
    );
  });

  it("estimates p50 and p99 within 10 %", () => {
    const s = new RequestSeries();
    for (let i = 0; i < 98; i++) s.record(2, 0.010, ms(T0));
    s.record(2, 1.0, ms(T0));
    s.record(2, 1.0, ms(T0));
    const t = s.stats(10, 1, ms(T0 + 1)).totals.latencySeconds;
    expect(Math.abs(t.p50! - 0.010) / 0.010).toBeLessThan(0.1);
    expect(Math.abs(t.p99! - 1.0) / 1.0).toBeLessThan(0.1);
    const s2 = new RequestSeries();
    for (let i = 0; i < 99; i++) s2.record(2, 0.2, ms(T0));
    s2.record(2, 30, ms(T0));
    const t2 = s2.stats(10, 1, ms(T0 + 1)).totals.latencySeconds;
    expect(Math.abs(t2.p99! - 0.2) / 0.2).toBeLessThan(0.1);
  });

  it("rejects windows and steps out of range", () => {
    const s = new RequestSeries();
    expect(() => s.stats(0, 1)).toThrow(RangeError);
    expect(() => s.stats(901, 1)).toThrow(/from 1 to 900/);
    expect(() => s.stats(1.5, 1)).toThrow(RangeError);
    expect(() => s.stats(60, 61)).toThrow(/step of "61"/);
    expect(() => new RequestSeries(100)).toThrow(RangeError);
  });
});

describe("latencyBucket", () => {
  it("is monotonic, puts junk in bucket 0 and caps huge durations", () => {
    expect(latencyBucket(NaN)).toBe(0);
    expect(latencyBucket(-1)).toBe(0);
    expect(latencyBucket(0.00005)).toBe(0);
    let prev = 0;
    for (let d = 0.0001; d < 200; d *= 1.05) {
      const b = latencyBucket(d);
      expect(b).toBeGreaterThanOrEqual(prev);
      prev = b;
    }
    expect(latencyBucket(1e9)).toBe(latencyBucket(1e6));
  });
});

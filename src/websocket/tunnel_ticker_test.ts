import { describe, it } from "node:test";
import { expect } from "expect";
import { Ticker } from "./tunnel_ticker.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Ticker", () => {
  it("ticks every member at a quarter of the shortest period, and stops when empty", async () => {
    const ticker = new Ticker();
    const slow: number[] = [];
    const fast: number[] = [];
    const a = { tick: (now: number) => void slow.push(now) };
    const b = { tick: (now: number) => void fast.push(now) };
    ticker.add(a, 4000); // every 1000 ms
    ticker.add(b, 200); // everyone every 50 ms now
    await sleep(330);
    // ~6 ticks: more than a 1000 ms period gives, fewer than a 10 ms one (timers may be late).
    expect(fast.length).toBeGreaterThanOrEqual(2);
    expect(fast.length).toBeLessThanOrEqual(8);
    expect(slow.length).toBe(fast.length); // one clock read per tick, shared
    expect(slow).toEqual(fast);
    ticker.delete(a);
    ticker.delete(b);
    expect(ticker.size).toBe(0);
    const before = fast.length;
    await sleep(120);
    expect(fast.length).toBe(before);
  });

  it("keeps ticking the others when one member throws", async () => {
    const ticker = new Ticker();
    let ticks = 0;
    const bad = {
      tick: () => {
        throw new Error("boom");
      },
    };
    const good = { tick: () => void ticks++ };
    ticker.add(bad, 40);
    ticker.add(good, 40);
    await sleep(100);
    ticker.delete(bad);
    ticker.delete(good);
    expect(ticks).toBeGreaterThanOrEqual(2);
  });
});

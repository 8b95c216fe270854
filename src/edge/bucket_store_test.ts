import { describe, it } from "node:test";
import { expect } from "expect";
import { LocalBucketStore } from "./bucket_store.ts";

const T0 = 1_700_000_000_000;

describe("LocalBucketStore: token bucket", () => {
  it("20 takes at rate 5, burst 5 in one instant: exactly 5 pass, the rest wait 200 ms", () => {
    const s = new LocalBucketStore({ rate: 5, burst: 5 });
    const results = Array.from({ length: 20 }, () => s.take("a", 1, T0));
    expect(results.map((r) => r.allowed)).toEqual([
      ...Array(5).fill(true),
      ...Array(15).fill(false),
    ]);
    expect(results.slice(0, 5).map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0]);
    expect(results[5].retryAfterMs).toBeCloseTo(200);
    expect(results[5].resetMs).toBeCloseTo(1000);
    // Another key is unaffected.
    expect(s.take("b", 1, T0)).toEqual({
      allowed: true,
      remaining: 4,
      retryAfterMs: 0,
      resetMs: 200,
    });
  });

  it("refills continuously at the configured rate, up to burst", () => {
    const s = new LocalBucketStore({ rate: 5, burst: 5 });
    for (let i = 0; i < 5; i++) s.take("a", 1, T0);
    expect(s.take("a", 1, T0 + 199).allowed).toBe(false);
    expect(s.take("a", 1, T0 + 200).allowed).toBe(true); // one token per 200 ms
    expect(s.take("a", 1, T0 + 201).allowed).toBe(false);
    // After a long pause the bucket holds burst tokens, not more.
    const later = T0 + 60_000;
    const passes = Array.from({ length: 10 }, () => s.take("a", 1, later).allowed);
    expect(passes.filter(Boolean)).toHaveLength(5);
  });

  it("a refused take takes nothing (hammering does not push the next pass further away)", () => {
    const s = new LocalBucketStore({ rate: 1, burst: 1 });
    expect(s.take("a", 1, T0).allowed).toBe(true);
    for (let t = 1; t < 1000; t += 10) expect(s.take("a", 1, T0 + t).allowed).toBe(false);
    expect(s.take("a", 1, T0 + 1000).allowed).toBe(true);
  });

  it("fractional rates: 0.5/s means one token every 2 s", () => {
    const s = new LocalBucketStore({ rate: 0.5, burst: 1 });
    expect(s.take("a", 1, T0).allowed).toBe(true);
    const r = s.take("a", 1, T0 + 500);
    expect(r.allowed).toBe(false);
    expect(r.retryAfterMs).toBeCloseTo(1500);
  });

  it("rejects a nonsensical rate or burst", () => {
    expect(() => new LocalBucketStore({ rate: 0, burst: 1 })).toThrow(/rate must be > 0/);
    expect(() => new LocalBucketStore({ rate: 1, burst: 0 })).toThrow(/burst ≥ 1/);
  });
});

describe("LocalBucketStore: bounded memory", () => {
  it("drops buckets that are full again: idle keys do not stay", () => {
    const s = new LocalBucketStore({ rate: 10, burst: 20 });
    for (let i = 0; i < 1000; i++) s.take(`10.0.${i >> 8}.${i & 255}`, 1, T0);
    expect(s.size).toBe(1000);
    // 100 ms later every one of those buckets is full again; traffic from one client sweeps.
    for (let i = 0; i < 600; i++) s.take("192.0.2.1", 1, T0 + 200 + i * 100);
    expect(s.size).toBeLessThanOrEqual(2);
  });

  it("200k one-request clients at 20k requests/s (rate 10, burst 20): the map stays small", () => {
    const s = new LocalBucketStore({ rate: 10, burst: 20 });
    let max = 0;
    for (let i = 0; i < 200_000; i++) {
      s.take(`2001:db8::${i.toString(16)}`, 1, T0 + i * 0.05);
      if (s.size > max) max = s.size;
    }
    // A bucket is full again 100 ms after its one request: a generation lasts 100 ms (one
    // token) and goes 100 ms later, so ~4000 keys are remembered at a time.
    expect(max).toBeLessThan(5_000);
  });

  it("200k one-request clients against a slow rate: the store stops at maxKeys, oldest go", () => {
    const s = new LocalBucketStore({ rate: 0.001, burst: 5 }, { maxKeys: 10_000 });
    for (let i = 0; i < 200_000; i++) s.take(`k${i}`, 1, T0 + i);
    expect(s.size).toBe(10_000);
    // The newest keys are remembered (4 tokens left), the first ones forgotten (full again).
    expect(s.take("k199999", 1, T0 + 200_000).remaining).toBe(3);
    expect(s.take("k0", 1, T0 + 200_000).remaining).toBe(4);
  });

  it("memory: 200k distinct keys with nothing expiring fill preallocated tables of ~5 MB", () => {
    const s = new LocalBucketStore({ rate: 0.001, burst: 5 }); // default maxKeys 100k
    const key = (i: number) => `2001:db8:${i >> 16}::${(i & 0xffff).toString(16)}`;
    for (let i = 0; i < 200_000; i++) s.take(key(i), 1, T0 + i);
    expect(s.size).toBe(100_000);
    // Two generations of 2^17 slots, 20 bytes each.
    expect(s.bytes).toBe(2 * 131_072 * 20);
    // The newest keys are all still limited.
    expect(s.take(key(199_999), 1, T0 + 200_000).remaining).toBe(3);
  });

  it("memory: the keys are no objects on the heap (measured in a child process)", async () => {
    // In its own process: this one is shared with every other test file.
    const store = new URL("./bucket_store.ts", import.meta.url).href;
    const script = `import { LocalBucketStore } from ${JSON.stringify(store)};
const gc = (globalThis as { gc: () => void }).gc;
const keys = Array.from({ length: 200_000 }, (_, i) => "10." + (i >> 16) + "." + ((i >> 8) & 255) + "." + (i & 255));
gc();
const before = Deno.memoryUsage().heapUsed;
const s = new LocalBucketStore({ rate: 0.001, burst: 5 });
for (let i = 0; i < keys.length; i++) s.take(keys[i], 1, 1_700_000_000_000 + i);
gc();
console.log(JSON.stringify({ size: s.size, heap: Deno.memoryUsage().heapUsed - before }));
`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--v8-flags=--expose-gc", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    expect(new TextDecoder().decode(out.stderr)).toBe("");
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as { size: number; heap: number };
    expect(r.size).toBe(100_000);
    // A Map of 100k keys takes ~8 MiB of heap here; the tables take none.
    expect(r.heap / 2 ** 20).toBeLessThan(1);
  });
});

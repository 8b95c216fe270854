import { describe, it } from "node:test";
import { expect } from "expect";
import type { RateLimitConfig } from "../config/types.ts";
import type { BucketStore, TakeResult } from "./bucket_store.ts";
import { RateLimit } from "./rate_limit.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { EdgeRefusal } from "./types.ts";

const T0 = 1_700_000_000_000;

function limiter(config: RateLimitConfig) {
  let now = T0;
  const rl = new RateLimit(config, { clock: () => now });
  return { rl, advance: (ms: number) => (now += ms) };
}

const headersOf = (v: unknown) => Object.fromEntries((v as EdgeRefusal).response.headers);

describe("RateLimit", () => {
  it("20 requests at rate 5, burst 5 from one address: 5 pass, then 429s; another address passes", () => {
    const { rl } = limiter({ rate: 5, burst: 5, key: "ip" });
    const req = testRequest();
    const verdicts = Array.from({ length: 20 }, () => rl.check(req, "203.0.113.7"));
    expect(verdicts.slice(0, 5)).toEqual(Array(5).fill(null));
    for (const v of verdicts.slice(5)) {
      expect((v as EdgeRefusal).rule).toBe("rate_limit");
      expect((v as EdgeRefusal).response.status).toBe(429);
    }
    expect(headersOf(verdicts[5])).toEqual({
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      "retry-after": "1",
      "ratelimit-policy": '"default";q=5;w=1',
      "ratelimit": '"default";r=0;t=1',
    });
    expect(rl.check(req, "2001:db8::1")).toBeNull();
  });

  it("Retry-After is whole seconds, rounded up: rate 0.25 waits 4 s", () => {
    const { rl, advance } = limiter({ rate: 0.25, burst: 2, key: "ip" });
    const req = testRequest();
    expect(rl.check(req, "a")).toBeNull();
    expect(rl.check(req, "a")).toBeNull();
    const h = headersOf(rl.check(req, "a"));
    expect(h["retry-after"]).toBe("4");
    expect(h["ratelimit-policy"]).toBe('"default";q=2;w=8');
    expect(h["ratelimit"]).toBe('"default";r=0;t=4');
    advance(3001);
    expect(headersOf(rl.check(req, "a"))["retry-after"]).toBe("1");
    advance(999);
    expect(rl.check(req, "a")).toBeNull();
  });

  it("keyed by a header: each value has its own bucket; requests without it share one", () => {
    const { rl } = limiter({ rate: 1, burst: 1, key: "header:X-Api-Key" });
    const k1 = testRequest({ headers: [["X-Api-Key", "one"]] });
    const k2 = testRequest({ headers: [["x-api-key", "two"]] });
    const none = testRequest();
    expect(rl.check(k1, "10.0.0.1")).toBeNull();
    expect(rl.check(k1, "10.0.0.2")).not.toBeNull(); // another address, same key
    expect(rl.check(k2, "10.0.0.1")).toBeNull();
    expect(rl.check(none, "10.0.0.3")).toBeNull();
    expect(rl.check(none, "10.0.0.4")).not.toBeNull();
  });

  it("stores a long header key as its hash (bounded key size), still per value", () => {
    const { rl } = limiter({ rate: 1, burst: 1, key: "header:authorization" });
    const long = (c: string) => testRequest({ headers: [["authorization", c.repeat(10_000)]] });
    expect(rl.keyOf(long("a"), "x").length).toBeLessThan(50);
    expect(rl.check(long("a"), "x")).toBeNull();
    expect(rl.check(long("b"), "x")).toBeNull();
    expect(rl.check(long("a"), "x")).not.toBeNull();
  });

  it("works with a store that answers asynchronously (a shared store)", async () => {
    let calls = 0;
    const remote: BucketStore = {
      params: { rate: 1, burst: 1 },
      take(_key, _cost, _now): Promise<TakeResult> {
        calls++;
        const allowed = calls === 1;
        return Promise.resolve({
          allowed,
          remaining: 0,
          retryAfterMs: allowed ? 0 : 2500,
          resetMs: 2500,
        });
      },
    };
    const rl = new RateLimit({ rate: 1, burst: 1, key: "ip" }, { stores: () => remote });
    const first = rl.check(testRequest(), "a");
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBeNull();
    expect(headersOf(await rl.check(testRequest(), "a"))["retry-after"]).toBe("3");
  });
});

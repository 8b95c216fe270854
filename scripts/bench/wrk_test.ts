import { describe, it } from "node:test";
import { expect } from "expect";
import { parseWrk, runWrk } from "./wrk.ts";

const SAMPLE = `Running 10s test @ http://127.0.0.1:8080/api/bench
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  310.45us   9.87ms   80.00%
    Req/Sec    26.70k     1.20k   28.90k    70.00%
  Latency Distribution
     50%    1.15ms
     75%    1.30ms
     90%    1.50ms
     99%  812.00us
  265721 requests in 10.00s, 40.55MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:  26571.33
Transfer/sec:      4.05MB
`;

describe("parseWrk", () => {
  it("reads requests, rate, p99 in ms, non-2xx and socket errors", () => {
    const r = parseWrk(SAMPLE);
    expect(r.requests).toBe(265721);
    expect(r.requestsPerSecond).toBeCloseTo(26571.33);
    expect(r.p99Ms).toBeCloseTo(0.812);
    expect(r.non2xx).toBe(17);
    expect(r.socketErrors).toBe(10);
  });

  it("converts seconds and reports zero errors when wrk prints none", () => {
    const clean = SAMPLE.replace("812.00us", "1.50s").replace(/ {2}Socket errors.*\n/, "")
      .replace(/ {2}Non-2xx.*\n/, "");
    const r = parseWrk(clean);
    expect(r.p99Ms).toBe(1500);
    expect(r.non2xx).toBe(0);
    expect(r.socketErrors).toBe(0);
  });

  it("refuses output without a request count", () => {
    expect(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused")).toThrow(
      /Cannot parse wrk output/,
    );
  });
});

describe("runWrk", () => {
  it("loads a real server and counts its 503s as non-2xx", async () => {
    let served = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      served++;
      const ok = new URL(req.url).pathname === "/ok" && req.headers.get("host") === "bench.test";
      return new Response("x", { status: ok ? 200 : 503 });
    });
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const ok = await runWrk({
        url: `${base}/ok`,
        connections: 2,
        duration: 1,
        headers: { Host: "bench.test" },
      });
      expect(ok.requests).toBeGreaterThan(100);
      expect(ok.non2xx).toBe(0);
      expect(ok.p99Ms).toBeGreaterThan(0);
      const bad = await runWrk({ url: `${base}/bad`, connections: 2, duration: 1 });
      expect(bad.non2xx).toBe(bad.requests);
      expect(served).toBeGreaterThanOrEqual(ok.requests + bad.requests);
    } finally {
      await server.shutdown();
    }
  });
});

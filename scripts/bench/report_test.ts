import { describe, it } from "node:test";
import { expect } from "expect";
import {
  formatTable,
  formatWsTable,
  httpsLines,
  median,
  type Row,
  verdicts,
  type WsRow,
  wsVerdict,
} from "./report.ts";

const row = (name: string, cpu: number, extra: Partial<Row> = {}): Row => ({
  name,
  requestsPerSecond: 1000 / cpu * 10,
  p99Ms: cpu / 10,
  cpuMicrosPerRequest: cpu,
  requests: 10000,
  non2xx: 0,
  socketErrors: 0,
  ...extra,
});

describe("formatTable", () => {
  it("prints ratios to the baseline row", () => {
    const table = formatTable([row("bws", 30), row("nginx", 20)], "nginx");
    const bws = table.split("\n").find((l) => l.startsWith("bws"))!;
    expect(table.split("\n")[0]).toContain("CPU vs nginx");
    expect(bws).toContain("1.50x");
    expect(bws).toContain("0.67x");
  });
});

describe("verdicts", () => {
  it("passes both issue bars when bws is cheap enough", () => {
    const lines = verdicts([
      row("bws", 30),
      row("deno-minimal", 55),
      row("nginx", 21),
      row("nginx-same-work", 24),
    ]);
    expect(lines[0]).toBe(
      "bws CPU/req ≤ 1.3 × nginx doing the same work: PASS (bws 30.0 µs vs nginx-same-work " +
        "24.0 µs = 1.25x)",
    );
    expect(lines[1]).toMatch(/^bws CPU\/req ≤ 1.5 × bare nginx: PASS .*1\.43x/);
    expect(lines[2]).toMatch(/^bws CPU\/req ≤ minimal Deno proxy: PASS/);
  });

  it("fails a bar just past its factor, and on failed requests even when cheap", () => {
    const over = verdicts([row("bws", 31.5), row("nginx", 20), row("nginx-same-work", 24)]);
    expect(over[0]).toMatch(/same work: FAIL .*1\.31x/);
    expect(over[1]).toMatch(/bare nginx: FAIL .*1\.57x/);
    const failed = verdicts([
      row("bws", 20, { non2xx: 3 }),
      row("nginx", 19),
      row("nginx-same-work", 19),
    ]);
    expect(failed[0]).toContain("FAIL");
    expect(failed[0]).toContain("failed requests");
  });

  it("adds the ratio of each round when both rows were measured in the same rounds", () => {
    const lines = verdicts([
      row("bws", 30, { roundCpu: [28, 32] }),
      row("nginx", 20, { roundCpu: [20, 20] }),
      row("nginx-same-work", 25),
    ]);
    expect(lines[1]).toMatch(/= 1\.50x; per round 1\.40 1\.60\)$/);
    expect(lines[0]).toMatch(/= 1\.20x\)$/);
  });

  it("judges by the median of the per-round ratios from three rounds on", () => {
    // One slow round of bws's moves the sums past the bar; the median is not moved by it.
    const lines = verdicts([
      row("bws", 34, { roundCpu: [31, 30, 46, 31, 32] }),
      row("nginx", 20, { roundCpu: [20, 20, 20, 20, 20] }),
      row("nginx-same-work", 25, { roundCpu: [25, 24, 25, 26, 25] }),
    ]);
    expect(lines[0]).toBe(
      "bws CPU/req ≤ 1.3 × nginx doing the same work: PASS (median of 5 rounds 1.25x; bws " +
        "34.0 µs vs nginx-same-work 25.0 µs = 1.36x over all rounds; per round 1.24 1.25 1.84 " +
        "1.19 1.28)",
    );
    expect(lines[1]).toMatch(/bare nginx: FAIL \(median of 5 rounds 1\.55x;/);
    // A bar the median misses fails whatever the sums say.
    const slow = verdicts([
      row("bws", 30, { roundCpu: [34, 34, 10, 34, 34] }),
      row("nginx-same-work", 25, { roundCpu: [25, 25, 25, 25, 25] }),
    ]);
    expect(slow[0]).toMatch(/same work: FAIL \(median of 5 rounds 1\.36x; .* = 1\.20x over all/);
  });

  it("reports both Deno floors against nginx and what bws spends above them", () => {
    const lines = verdicts([
      row("bws", 30),
      row("nginx", 12),
      row("nginx-same-work", 15),
      row("deno-raw-floor", 12),
      row("deno-serve-floor", 18),
    ]);
    expect(lines[3]).toBe(
      "raw-front floor: deno-raw-floor 12.0 µs = 1.00x nginx, 0.80x nginx-same-work; " +
        "bws spends 18.0 µs above it",
    );
    expect(lines[4]).toMatch(/^Deno.serve floor: deno-serve-floor 18.0 µs = 1.50x nginx/);
  });

  it("says when a comparison was not measured", () => {
    const lines = verdicts([row("bws", 30)]);
    expect(lines[0]).toContain("not measured (comparison missing)");
    expect(verdicts([row("nginx", 30)])[1]).toContain("not measured (bws missing)");
  });
});

describe("httpsLines", () => {
  it("compares each bws HTTPS row with nginx on the same certificates and bare nginx", () => {
    const lines = httpsLines([
      row("bws-https", 40),
      row("bws-https-sni", 60, { socketErrors: 2 }),
      row("nginx-https", 20),
      row("nginx-same-work-https", 25),
      row("nginx-same-work-https-sni", 30),
    ]);
    expect(lines[0]).toBe(
      "HTTPS, one certificate: bws 40.0 µs/req = 1.60x nginx-same-work-https (25.0 µs, same " +
        "certificates) = 2.00x nginx-https (20.0 µs, bare, one certificate)",
    );
    expect(lines[1]).toMatch(/^HTTPS, SNI, two certificates: bws 60.0 µs\/req = 2.00x /);
    expect(lines[1]).toContain("bws had 2 failed requests");
  });

  it("says when bws was not measured", () => {
    expect(httpsLines([row("nginx-https", 20)])[0]).toBe(
      "HTTPS, one certificate: bws not measured",
    );
  });
});

describe("WebSocket rows", () => {
  const ws = (name: string, rounds: number[]): WsRow => ({
    name,
    microsPerMessage: rounds,
    messagesPerSecond: 50_000,
  });

  it("takes the median of the rounds", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([])).toBeNaN();
  });

  it("passes at 1.6x nginx and fails above it, with ratios per round", () => {
    expect(wsVerdict([ws("bws", [6.4, 6.0, 7.0]), ws("nginx", [4, 4, 4])])).toBe(
      "bws CPU/message ≤ 1.6 × nginx (WebSocket relay): PASS (bws 6.40 µs vs nginx 4.00 µs = " +
        "1.60x; per round 1.60 1.50 1.75)",
    );
    expect(wsVerdict([ws("bws", [7, 7, 7]), ws("nginx", [4, 4, 4])])).toMatch(/FAIL .*1\.75x/);
    expect(wsVerdict([ws("bws", [7])])).toContain("not measured (nginx missing)");
  });

  it("prints medians and ratios to the baseline", () => {
    const table = formatWsTable([ws("bws", [6, 8, 7]), ws("nginx", [3.5, 3.5, 3.5])], "nginx");
    const bws = table.split("\n").find((l) => l.startsWith("bws"))!;
    expect(bws).toContain("7.00");
    expect(bws).toContain("2.00x");
    expect(bws).toContain("6.00 8.00 7.00");
  });
});

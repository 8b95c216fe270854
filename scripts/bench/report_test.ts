import { describe, it } from "node:test";
import { expect } from "expect";
import { formatTable, type Row, verdicts } from "./report.ts";

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
  it("passes both bars when bws is cheap enough", () => {
    const lines = verdicts([row("bws", 30), row("deno-minimal", 55), row("nginx", 19)]);
    expect(lines[0]).toMatch(/^bws CPU\/req ≤ minimal Deno proxy: PASS/);
    expect(lines[1]).toMatch(/^bws CPU\/req ≤ 1.8 × nginx: PASS .*1\.58x/);
  });

  it("fails a bar on CPU, and on failed requests even when cheap", () => {
    const lines = verdicts([
      row("bws", 40, { non2xx: 3 }),
      row("deno-minimal", 55),
      row("nginx", 19),
    ]);
    expect(lines[0]).toContain("FAIL");
    expect(lines[0]).toContain("failed requests");
    expect(lines[1]).toMatch(/FAIL .*2\.11x/);
  });

  it("holds bws to nginx doing the same work and reports the platform floor", () => {
    const lines = verdicts([
      row("bws", 30),
      row("nginx", 12),
      row("nginx-same-work", 18),
      row("deno-floor", 18),
    ]);
    expect(lines[2]).toMatch(/^bws CPU\/req ≤ 1.8 × nginx doing the same work: PASS .*1\.67x/);
    expect(lines[3]).toBe(
      "platform floor: deno-floor 18.0 µs = 1.50x nginx; bws spends 12.0 µs above it",
    );
  });

  it("says when a comparison was not measured", () => {
    expect(verdicts([row("bws", 30)])[1]).toContain("not measured");
  });
});

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

  it("says when a comparison was not measured", () => {
    expect(verdicts([row("bws", 30)])[1]).toContain("not measured");
  });
});

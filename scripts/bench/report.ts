/** The benchmark's printed table and verdicts. */

/** One proxy's measurements from one wrk run. */
export interface Row {
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly cpuMicrosPerRequest: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly socketErrors: number;
  /** Peak RSS (VmHWM) in bytes, when measured. */
  readonly peakRss?: number;
}

const MB = 1024 * 1024;

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

function ratio(value: number, base: number): string {
  return Number.isFinite(value) && Number.isFinite(base) && base > 0
    ? `${(value / base).toFixed(2)}x`
    : "-";
}

/** Formats rows as an aligned text table with ratios to the row named `baseline`. */
export function formatTable(rows: readonly Row[], baseline: string | undefined): string {
  const base = rows.find((r) => r.name === baseline);
  const header = [
    "proxy",
    "req/s",
    "p99 ms",
    "CPU µs/req",
    `req/s vs ${baseline ?? "-"}`,
    `p99 vs ${baseline ?? "-"}`,
    `CPU vs ${baseline ?? "-"}`,
    "non-2xx",
    "sock err",
    "peak RSS",
  ];
  const lines = rows.map((r) => [
    r.name,
    fixed(r.requestsPerSecond, 0),
    fixed(r.p99Ms, 2),
    fixed(r.cpuMicrosPerRequest, 1),
    ratio(r.requestsPerSecond, base?.requestsPerSecond ?? NaN),
    ratio(r.p99Ms, base?.p99Ms ?? NaN),
    ratio(r.cpuMicrosPerRequest, base?.cpuMicrosPerRequest ?? NaN),
    String(r.non2xx),
    String(r.socketErrors),
    r.peakRss ? `${(r.peakRss / MB).toFixed(0)} MiB` : "",
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  return all
    .map((l) =>
      l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join("  ").trimEnd()
    )
    .join("\n");
}

/** "PASS"/"FAIL" lines for the two CPU bars; a bar whose comparison is missing says so. */
export function verdicts(rows: readonly Row[]): string[] {
  const find = (name: string) => rows.find((r) => r.name === name);
  const bws = find("bws");
  const minimal = find("deno-minimal");
  const nginx = find("nginx");
  const lines: string[] = [];
  const bar = (label: string, other: Row | undefined, factor: number) => {
    if (!bws || !other) {
      lines.push(`${label}: not measured (${!bws ? "bws" : "comparison"} missing)`);
      return;
    }
    const r = bws.cpuMicrosPerRequest / other.cpuMicrosPerRequest;
    const clean = bws.non2xx === 0 && bws.socketErrors === 0;
    const pass = r <= factor && clean;
    lines.push(
      `${label}: ${pass ? "PASS" : "FAIL"} (bws ${fixed(bws.cpuMicrosPerRequest, 1)} µs vs ` +
        `${other.name} ${fixed(other.cpuMicrosPerRequest, 1)} µs = ${r.toFixed(2)}x` +
        `${clean ? "" : "; bws had failed requests"})`,
    );
  };
  bar("bws CPU/req ≤ minimal Deno proxy", minimal, 1);
  bar("bws CPU/req ≤ 1.8 × nginx", nginx, 1.8);
  bar("bws CPU/req ≤ 1.8 × nginx doing the same work", find("nginx-same-work"), 1.8);
  const floor = find("deno-floor");
  if (floor && nginx) {
    lines.push(
      `platform floor: deno-floor ${fixed(floor.cpuMicrosPerRequest, 1)} µs = ` +
        `${(floor.cpuMicrosPerRequest / nginx.cpuMicrosPerRequest).toFixed(2)}x nginx` +
        (bws
          ? `; bws spends ${fixed(bws.cpuMicrosPerRequest - floor.cpuMicrosPerRequest, 1)} µs ` +
            "above it"
          : ""),
    );
  }
  return lines;
}

/**
 * The benchmark's printed tables and verdicts: plain HTTP rows with the CPU bars, HTTPS rows
 * with their ratios to nginx, and WebSocket relay rows with their bar.
 *
 * @module
 */

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
  /** CPU µs per request in each round, when measured in turns. */
  readonly roundCpu?: readonly number[];
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

/** bws's CPU per request at most this many times nginx doing the same work (same run). */
export const SAME_WORK_BAR = 1.3;
/** bws's CPU per request at most this many times bare nginx (same run). */
export const NGINX_BAR = 1.5;
/** bws's CPU per relayed WebSocket message at most this many times nginx's (same run). */
export const WS_BAR = 1.6;

const us = (n: number) => `${fixed(n, 1)} µs`;

/** The ratios of `a` to `b` round by round, when both were measured in the same rounds. */
function roundRatios(a: Row, b: Row): number[] {
  const x = a.roundCpu ?? [];
  const y = b.roundCpu ?? [];
  if (x.length < 2 || x.length !== y.length) return [];
  return x.map((v, i) => v / y[i]);
}

/** "; per round 1.21 1.35 …" when both rows were measured in the same rounds, else "". */
function perRound(a: Row, b: Row): string {
  const r = roundRatios(a, b);
  return r.length === 0 ? "" : `; per round ${r.map((v) => v.toFixed(2)).join(" ")}`;
}

/** Rounds from which a bar is judged by the median of the per-round ratios. */
export const MEDIAN_ROUNDS = 3;

/**
 * "PASS"/"FAIL" lines for the CPU bars (bws against nginx-same-work, bare nginx and the minimal
 * Deno proxy), then what the two Deno floors cost; a bar whose comparison is missing says so.
 *
 * With {@link MEDIAN_ROUNDS} or more rounds taken in turn, a bar is judged by the median of the
 * per-round ratios: each round compares the two proxies a few seconds apart, and the median
 * drops the rounds in which a slow phase of a shared machine hit only one of them (one such
 * round moves the ratio of the sums by 0.3x on the 2-core VMs this runs on). The ratio of the
 * sums over all rounds is printed beside it.
 */
export function verdicts(rows: readonly Row[]): string[] {
  const find = (name: string) => rows.find((r) => r.name === name);
  const bws = find("bws");
  const nginx = find("nginx");
  const sameWork = find("nginx-same-work");
  const lines: string[] = [];
  const bar = (label: string, other: Row | undefined, factor: number) => {
    if (!bws || !other) {
      lines.push(`${label}: not measured (${!bws ? "bws" : "comparison"} missing)`);
      return;
    }
    const overall = bws.cpuMicrosPerRequest / other.cpuMicrosPerRequest;
    const rounds = roundRatios(bws, other);
    const byMedian = rounds.length >= MEDIAN_ROUNDS;
    const r = byMedian ? median(rounds) : overall;
    const clean = bws.non2xx === 0 && bws.socketErrors === 0;
    const pass = r <= factor && clean;
    lines.push(
      `${label}: ${pass ? "PASS" : "FAIL"} (` +
        (byMedian ? `median of ${rounds.length} rounds ${r.toFixed(2)}x; ` : "") +
        `bws ${us(bws.cpuMicrosPerRequest)} vs ${other.name} ${us(other.cpuMicrosPerRequest)} = ` +
        `${overall.toFixed(2)}x` + (byMedian ? " over all rounds" : "") +
        perRound(bws, other) + `${clean ? "" : "; bws had failed requests"})`,
    );
  };
  bar(`bws CPU/req ≤ ${SAME_WORK_BAR} × nginx doing the same work`, sameWork, SAME_WORK_BAR);
  bar(`bws CPU/req ≤ ${NGINX_BAR} × bare nginx`, nginx, NGINX_BAR);
  bar("bws CPU/req ≤ minimal Deno proxy", find("deno-minimal"), 1);
  const floors: [string, string][] = [
    ["raw-front floor", "deno-raw-floor"],
    ["Deno.serve floor", "deno-serve-floor"],
  ];
  for (const [label, name] of floors) {
    const floor = find(name);
    if (!floor || !nginx) continue;
    lines.push(
      `${label}: ${name} ${us(floor.cpuMicrosPerRequest)} = ` +
        `${ratio(floor.cpuMicrosPerRequest, nginx.cpuMicrosPerRequest)} nginx` +
        (sameWork
          ? `, ${ratio(floor.cpuMicrosPerRequest, sameWork.cpuMicrosPerRequest)} nginx-same-work`
          : "") +
        (bws
          ? `; bws spends ${us(bws.cpuMicrosPerRequest - floor.cpuMicrosPerRequest)} above it`
          : ""),
    );
  }
  return lines;
}

/** Names of the HTTPS rows (two bench sites on one TLS port). */
export const HTTPS_ROWS = {
  bwsOne: "bws-https",
  bwsSni: "bws-https-sni",
  nginxOne: "nginx-https",
  sameWorkOne: "nginx-same-work-https",
  sameWorkSni: "nginx-same-work-https-sni",
} as const;

/**
 * Lines comparing each bws HTTPS row with nginx doing the same work with the same certificates,
 * and with bare nginx on one certificate (no bar: the issue asks for the figures).
 */
export function httpsLines(rows: readonly Row[]): string[] {
  const find = (name: string) => rows.find((r) => r.name === name);
  const bare = find(HTTPS_ROWS.nginxOne);
  const lines: string[] = [];
  const pairs: [string, string, string][] = [
    ["one certificate", HTTPS_ROWS.bwsOne, HTTPS_ROWS.sameWorkOne],
    ["SNI, two certificates", HTTPS_ROWS.bwsSni, HTTPS_ROWS.sameWorkSni],
  ];
  for (const [label, bwsName, nginxName] of pairs) {
    const bws = find(bwsName);
    const nginx = find(nginxName);
    if (!bws) {
      lines.push(`HTTPS, ${label}: bws not measured`);
      continue;
    }
    const parts = [`bws ${us(bws.cpuMicrosPerRequest)}/req`];
    if (nginx) {
      parts.push(
        `${ratio(bws.cpuMicrosPerRequest, nginx.cpuMicrosPerRequest)} ${nginx.name} ` +
          `(${us(nginx.cpuMicrosPerRequest)}, same certificates${perRound(bws, nginx)})`,
      );
    }
    if (bare) {
      parts.push(
        `${ratio(bws.cpuMicrosPerRequest, bare.cpuMicrosPerRequest)} ${bare.name} ` +
          `(${us(bare.cpuMicrosPerRequest)}, bare, one certificate)`,
      );
    }
    const failed = bws.non2xx + bws.socketErrors;
    lines.push(
      `HTTPS, ${label}: ${parts.join(" = ")}` +
        (failed ? `; bws had ${failed} failed requests` : ""),
    );
  }
  return lines;
}

/** One relay's WebSocket measurements over several rounds. */
export interface WsRow {
  readonly name: string;
  /** CPU µs of the relay's process tree per echoed message, one per round. */
  readonly microsPerMessage: readonly number[];
  /** Echoed messages per second in the first measured round. */
  readonly messagesPerSecond: number;
}

/** The middle value (upper middle for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** WebSocket rows as an aligned table: median CPU per message, ratio to `baseline`, rounds. */
export function formatWsTable(rows: readonly WsRow[], baseline: string | undefined): string {
  const base = rows.find((r) => r.name === baseline);
  const baseMedian = base ? median(base.microsPerMessage) : NaN;
  const header = ["relay", "msg/s", "CPU µs/msg", `CPU vs ${baseline ?? "-"}`, "rounds µs/msg"];
  const lines = rows.map((r) => [
    r.name,
    fixed(r.messagesPerSecond, 0),
    fixed(median(r.microsPerMessage), 2),
    ratio(median(r.microsPerMessage), baseMedian),
    r.microsPerMessage.map((v) => v.toFixed(2)).join(" "),
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  return all
    .map((l) =>
      l.map((cell, i) =>
        i === 0 || i === l.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])
      ).join("  ").trimEnd()
    )
    .join("\n");
}

/** "PASS"/"FAIL" for bws's CPU per relayed message against nginx's (medians, same run). */
export function wsVerdict(rows: readonly WsRow[]): string {
  const label = `bws CPU/message ≤ ${WS_BAR} × nginx (WebSocket relay)`;
  const bws = rows.find((r) => r.name === "bws");
  const nginx = rows.find((r) => r.name === "nginx");
  if (!bws || !nginx) return `${label}: not measured (${!bws ? "bws" : "nginx"} missing)`;
  const b = median(bws.microsPerMessage);
  const n = median(nginx.microsPerMessage);
  const r = b / n;
  const rounds = bws.microsPerMessage.map((v, i) => (v / nginx.microsPerMessage[i]).toFixed(2));
  return `${label}: ${r <= WS_BAR ? "PASS" : "FAIL"} (bws ${b.toFixed(2)} µs vs nginx ` +
    `${n.toFixed(2)} µs = ${r.toFixed(2)}x; per round ${rounds.join(" ")})`;
}

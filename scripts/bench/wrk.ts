/** Runs wrk and reads its text report. */

import { pinned } from "./process.ts";

/** What one wrk run reports. */
export interface WrkResult {
  /** Completed requests ("N requests in …"). */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** 99th percentile latency in milliseconds (from `--latency`), NaN if absent. */
  readonly p99Ms: number;
  /** "Non-2xx or 3xx responses". */
  readonly non2xx: number;
  /** Sum of connect, read, write and timeout socket errors. */
  readonly socketErrors: number;
  /** wrk's report as printed. */
  readonly raw: string;
}

/** Options of {@linkcode runWrk}. */
export interface WrkOptions {
  readonly url: string;
  /** @default 32 */
  readonly connections?: number;
  /** Seconds. @default 10 */
  readonly duration?: number;
  /** @default 1 */
  readonly threads?: number;
  readonly headers?: Record<string, string>;
  /** @default "wrk" */
  readonly binary?: string;
  /** CPU list to pin wrk to (`taskset -c`). */
  readonly cpus?: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  return Number(value) * (UNIT_MS[unit] ?? NaN);
}

/** Parses wrk 4.x output. Throws when the request count or rate is missing. */
export function parseWrk(raw: string): WrkResult {
  const requests = /(\d+) requests in /.exec(raw);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  if (!requests || !rate) throw new Error(`Cannot parse wrk output "${raw.slice(0, 200)}"`);
  const p99 = /^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(raw);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(raw);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  return {
    requests: Number(requests[1]),
    requestsPerSecond: Number(rate[1]),
    p99Ms: p99 ? toMs(p99[1], p99[2]) : NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    raw,
  };
}

/** Runs `wrk --latency` against `url` and parses the report. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const duration = options.duration ?? 10;
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections ?? 32}`,
    `-d${duration}s`,
    `--timeout`,
    `5s`,
    "--latency",
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    args.push("-H", `${name}: ${value}`);
  }
  args.push(options.url);
  const run = pinned(options.cpus, options.binary ?? "wrk", args);
  const child = new Deno.Command(run.command, {
    args: run.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // wrk ends on its own; the timer only guards against a hung run.
  const guard = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, (duration + 30) * 1000);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return parseWrk(text);
  } finally {
    clearTimeout(guard);
  }
}

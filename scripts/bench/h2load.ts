/** Runs h2load (nghttp2's HTTP/2 load generator) and reads its text report. */

import { pinned } from "./process.ts";

/** What one h2load run reports. */
export interface H2loadResult {
  /** Requests completed ("N done"). */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Answers that were not 2xx, plus requests that failed, errored or timed out. */
  readonly bad: number;
  /** h2load's report as printed. */
  readonly raw: string;
}

/** Options of {@linkcode runH2load}. */
export interface H2loadOptions {
  /** `http://…`: HTTP/2 with prior knowledge. */
  readonly url: string;
  /** The `:authority` to send (the site's host name). */
  readonly authority: string;
  readonly connections: number;
  /** Streams in flight per connection. */
  readonly streams: number;
  /** Seconds. */
  readonly duration: number;
  /** @default "h2load" */
  readonly binary?: string;
  /** CPU list to pin h2load to (`taskset -c`). */
  readonly cpus?: string;
}

/** Parses h2load's report (nghttp2 1.5x). Throws when the request counts or rate are missing. */
export function parseH2load(raw: string): H2loadResult {
  const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(raw);
  const requests =
    /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/
      .exec(raw);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(raw);
  if (!finished || !requests) throw new Error(`Cannot parse h2load output "${raw.slice(0, 300)}"`);
  const [done, , failed, errored, timeout] = requests.slice(1).map(Number);
  const not2xx = codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0;
  return {
    requests: done,
    requestsPerSecond: Number(finished[1]),
    bad: not2xx + failed + errored + timeout,
    raw,
  };
}

/** Runs h2load for `duration` seconds against `url` and parses the report. */
export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const run = pinned(o.cpus, o.binary ?? "h2load", [
    "-D",
    String(o.duration),
    "-c",
    String(o.connections),
    "-m",
    String(o.streams),
    "-H",
    `:authority: ${o.authority}`,
    o.url,
  ]);
  const out = await new Deno.Command(run.command, {
    args: run.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const raw = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run h2load against ${o.url}: ${new TextDecoder().decode(out.stderr).trim() || raw}`,
    );
  }
  return parseH2load(raw);
}

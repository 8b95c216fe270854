/**
 * One benchmark row: a warm-up wrk run, then a measured one with the CPU time the proxy's
 * process tree spent over it.
 *
 * @module
 */

import type { Service } from "./process.ts";
import { statusBytes, treeCpuTicks } from "./proc_stats.ts";
import type { Row } from "./report.ts";
import { runWrk } from "./wrk.ts";

/** How to load one proxy. */
export interface LoadOptions {
  readonly connections: number;
  /** Seconds of the measured run. */
  readonly duration: number;
  /** Path of the wrk binary. */
  readonly wrk: string;
  /** CPUs wrk is pinned to. */
  readonly cpus?: string;
  /** /proc clock ticks per second. */
  readonly ticksPerSecond: number;
}

/** What to measure. */
export interface RowTarget {
  readonly name: string;
  readonly service: Service;
  readonly url: string;
  readonly headers?: Record<string, string>;
  /** Record the proxy's peak RSS (VmHWM) in the row. */
  readonly peakRss?: boolean;
}

/**
 * Warms up for 1 s, waits 200 ms, then runs wrk for `duration` seconds and divides the CPU
 * ticks of the service's process tree over that run by the completed requests.
 */
export async function measureRow(target: RowTarget, load: LoadOptions): Promise<Row> {
  const wrk = {
    url: target.url,
    connections: load.connections,
    headers: target.headers,
    binary: load.wrk,
    cpus: load.cpus,
  };
  await runWrk({ ...wrk, duration: 1 });
  await new Promise((r) => setTimeout(r, 200));
  const before = treeCpuTicks(target.service.pid);
  const result = await runWrk({ ...wrk, duration: load.duration });
  const after = treeCpuTicks(target.service.pid);
  const cpuMicros = ((after - before) / load.ticksPerSecond) * 1e6;
  return {
    name: target.name,
    requestsPerSecond: result.requestsPerSecond,
    p99Ms: result.p99Ms,
    cpuMicrosPerRequest: result.requests > 0 ? cpuMicros / result.requests : NaN,
    requests: result.requests,
    non2xx: result.non2xx,
    socketErrors: result.socketErrors,
    peakRss: target.peakRss ? statusBytes(target.service.pid, "VmHWM") : undefined,
  };
}

/** The progress line printed as soon as a row is measured. */
export function describeRow(row: Row): string {
  return `  ${row.name}: ${row.requestsPerSecond.toFixed(0)} req/s, p99 ${
    row.p99Ms.toFixed(2)
  } ms, ${row.cpuMicrosPerRequest.toFixed(1)} µs CPU/req` +
    (row.non2xx || row.socketErrors
      ? `, ${row.non2xx} non-2xx, ${row.socketErrors} socket errors`
      : "");
}

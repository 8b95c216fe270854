/**
 * Benchmark rows measured in turns: every proxy is running, each gets a warm-up, then round
 * after round each gets a slot of wrk load while the others idle. A proxy's CPU per request is
 * the CPU ticks its process tree spent over its slots divided by the requests completed in
 * them. Taking turns spreads every proxy over the whole run, so a burst of load from other
 * work on a shared machine lands on all of them instead of on whichever ran at that moment.
 *
 * @module
 */

import type { Service } from "./process.ts";
import { statusBytes, treeCpuTicks } from "./proc_stats.ts";
import { median, type Row } from "./report.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

/** Seconds of warm-up per target unless {@link LoadOptions.warmup} says otherwise. */
export const WARMUP_SECONDS = 5;

/** How to load the proxies. */
export interface LoadOptions {
  readonly connections: number;
  /** Seconds of measured load per proxy, split over the rounds. */
  readonly duration: number;
  /** Rounds the measured load is split into. @default 1 */
  readonly rounds?: number;
  /**
   * Seconds of unmeasured load each target gets first. bws (V8) settles over its first
   * seconds under load: after 1 s of warm-up its next 2 s slots cost 40.9, 36.9, then 34.6-34.9
   * µs per request (2026-12), so a short warm-up charges start-up to the first rounds; nginx,
   * HAProxy and Caddy are steady from the start. @default {@link WARMUP_SECONDS}
   */
  readonly warmup?: number;
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

/** A target's sums over its slots. */
interface Tally {
  readonly target: RowTarget;
  requests: number;
  ticks: number;
  non2xx: number;
  socketErrors: number;
  readonly rates: number[];
  readonly p99s: number[];
  readonly roundCpu: number[];
  failed?: string;
}

/** Seconds per slot: the duration split over the rounds, at least 1 s (wrk's unit). */
export function slotSeconds(duration: number, rounds: number): number {
  return Math.max(1, Math.round(duration / Math.max(1, rounds)));
}

/**
 * Warms each target up (`load.warmup` seconds), then runs `load.rounds` rounds in which each target in turn
 * gets `slotSeconds` of wrk. Returns a row per target that never failed (in target order) and
 * the failures by name; `onRound` sees each round's CPU µs per request by name.
 */
export async function measureInTurns(
  targets: readonly RowTarget[],
  load: LoadOptions,
  onRound?: (round: number, cpu: Map<string, number>) => void,
): Promise<{ rows: Row[]; failures: Map<string, string> }> {
  const rounds = Math.max(1, load.rounds ?? 1);
  const slot = slotSeconds(load.duration, rounds);
  const warmup = Math.max(1, load.warmup ?? WARMUP_SECONDS);
  const wrkFor = (t: RowTarget, duration: number): Promise<WrkResult> =>
    runWrk({
      url: t.url,
      connections: load.connections,
      headers: t.headers,
      binary: load.wrk,
      cpus: load.cpus,
      duration,
    });
  const tallies: Tally[] = targets.map((target) => ({
    target,
    requests: 0,
    ticks: 0,
    non2xx: 0,
    socketErrors: 0,
    rates: [],
    p99s: [],
    roundCpu: [],
  }));
  for (const t of tallies) {
    try {
      await wrkFor(t.target, warmup);
    } catch (error) {
      t.failed = (error as Error).message;
    }
  }
  for (let round = 0; round < rounds; round++) {
    const cpu = new Map<string, number>();
    for (const t of tallies) {
      if (t.failed) continue;
      try {
        await new Promise((r) => setTimeout(r, 200));
        const before = treeCpuTicks(t.target.service.pid);
        const result = await wrkFor(t.target, slot);
        const ticks = treeCpuTicks(t.target.service.pid) - before;
        t.requests += result.requests;
        t.ticks += ticks;
        t.non2xx += result.non2xx;
        t.socketErrors += result.socketErrors;
        t.rates.push(result.requestsPerSecond);
        t.p99s.push(result.p99Ms);
        const micros = result.requests > 0
          ? (ticks / load.ticksPerSecond) * 1e6 / result.requests
          : NaN;
        t.roundCpu.push(micros);
        cpu.set(t.target.name, micros);
      } catch (error) {
        t.failed = (error as Error).message;
      }
    }
    onRound?.(round + 1, cpu);
  }
  const failures = new Map<string, string>();
  const rows: Row[] = [];
  for (const t of tallies) {
    if (t.failed) {
      failures.set(t.target.name, t.failed);
      continue;
    }
    rows.push({
      name: t.target.name,
      requestsPerSecond: t.rates.reduce((a, b) => a + b, 0) / t.rates.length,
      p99Ms: median(t.p99s),
      cpuMicrosPerRequest: t.requests > 0
        ? (t.ticks / load.ticksPerSecond) * 1e6 / t.requests
        : NaN,
      requests: t.requests,
      non2xx: t.non2xx,
      socketErrors: t.socketErrors,
      peakRss: t.target.peakRss ? statusBytes(t.target.service.pid, "VmHWM") : undefined,
      roundCpu: t.roundCpu,
    });
  }
  return { rows, failures };
}

/** A round's progress line: CPU µs per request of each proxy measured in it. */
export function describeRound(round: number, cpu: Map<string, number>): string {
  const parts = [...cpu].map(([name, micros]) => `${name} ${micros.toFixed(1)}`);
  return `  round ${round}: ${parts.join(", ")} µs CPU/req`;
}

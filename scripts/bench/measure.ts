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

/**
 * Seconds of warm-up per target unless {@link LoadOptions.warmup} says otherwise. A Deno process
 * costs more over its first seconds under load (V8 compiling and sizing its heap): a fresh bws
 * given 2 s slots back to back cost 41.7, 35.3, 33.8, 32.9, then 27-32 µs per request (2026-12,
 * one calm run), and with 1 s of warm-up the first measured round of bws and of the minimal Deno
 * proxy came out 10-40 % above their next ones; nginx, HAProxy and Caddy are steady from the
 * start.
 */
export const WARMUP_SECONDS = 10;

/** How to load the proxies. */
export interface LoadOptions {
  readonly connections: number;
  /** Seconds of measured load per proxy, split over the rounds. */
  readonly duration: number;
  /** Rounds the measured load is split into. @default 1 */
  readonly rounds?: number;
  /**
   * Seconds of unmeasured load each target gets first, in turns of one slot each (see
   * {@link measureInTurns}). @default {@link WARMUP_SECONDS}
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

/** Unmeasured slots each target gets before the rounds: {@link WARMUP_SECONDS} in slots. */
export function warmupTurns(duration: number, rounds: number, warmup = WARMUP_SECONDS): number {
  return Math.ceil(Math.max(1, warmup) / slotSeconds(duration, rounds));
}

/**
 * Warms the targets up (`load.warmup` seconds each), then runs `load.rounds` rounds in which
 * each target in turn gets `slotSeconds` of wrk. Returns a row per target that never failed (in
 * target order) and the failures by name; `onRound` sees each round's CPU µs per request by name.
 *
 * The warm-up is given in turns of one slot too, so that no target idles longer than one round
 * (~15 s with 8 targets) between its warm-up and its first measured slot.
 */
export async function measureInTurns(
  targets: readonly RowTarget[],
  load: LoadOptions,
  onRound?: (round: number, cpu: Map<string, number>) => void,
): Promise<{ rows: Row[]; failures: Map<string, string> }> {
  const rounds = Math.max(1, load.rounds ?? 1);
  const slot = slotSeconds(load.duration, rounds);
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
  const turns = warmupTurns(load.duration, rounds, load.warmup);
  for (let turn = 0; turn < turns; turn++) {
    for (const t of tallies) {
      if (t.failed) continue;
      try {
        await wrkFor(t.target, slot);
      } catch (error) {
        t.failed = (error as Error).message;
      }
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

/**
 * Edge protection's cost in `deno task bench`: bws with the bench config as it is ("bws") and
 * with an access list and a rate limit on the benchmarked `/api/` route ("bws-edge"), both
 * running, loaded in turn with the same wrk load for a few rounds; their CPU µs per request are
 * compared (medians of the rounds, so a noisy neighbour on the shared machine hurts one round,
 * not the verdict). The goal (issue 12): within 10 %.
 *
 * The rate limit is set high (1 000 000 a second) so that it never refuses wrk: the point is
 * what the check costs on every request. A refused request would be a 429 and fail the run.
 *
 * @module
 */

import { BENCH_HOST, bwsToml } from "./configs.ts";
import type { BenchContext } from "./proxies.ts";
import { freePort, type Service, startService, waitReady } from "./process.ts";
import { treeCpuTicks } from "./proc_stats.ts";
import { runWrk } from "./wrk.ts";

/** The tables added under the `/api/` route. */
export const EDGE_TABLES = `
[sites.proxy.routes.access]
allow = ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]
deny = ["127.0.0.2", "203.0.113.0/24"]

[sites.proxy.routes.rate_limit]
rate = 1000000
burst = 1000000
`;

const API_ROUTE = /path = "\/api\/"\nupstream = "app"\n/;

/** The bench config with {@link EDGE_TABLES} on its `/api/` route. */
export function withEdgeTables(toml: string): string {
  const m = API_ROUTE.exec(toml);
  if (m === null) {
    throw new Error('Cannot add edge tables to the bws bench config: no "/api/" route found');
  }
  const at = m.index + m[0].length;
  return toml.slice(0, at) + EDGE_TABLES + toml.slice(at);
}

/** What {@link runEdgeRows} needs from the bench run. */
export interface EdgeRowsOptions {
  readonly ctx: BenchContext;
  /** Path of wrk. */
  readonly wrk: string;
  readonly connections: number;
  /** Seconds per wrk run. */
  readonly duration: number;
  readonly ticksPerSecond: number;
  /** Rounds per variant. @default 5 */
  readonly rounds?: number;
  /** Registers a started service for cleanup (bench.ts's `track`). */
  readonly track: (s: Promise<Service>) => Promise<Service>;
  /** Stops a service and forgets it (bench.ts's `untrack`). */
  readonly untrack: (s: Service) => Promise<void>;
}

interface Variant {
  readonly name: string;
  readonly toml: (base: string) => string;
  service?: Service;
  port: number;
  cpu: number[];
  rps: number[];
  bad: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Runs the comparison; returns the lines to print. */
export async function runEdgeRows(opts: EdgeRowsOptions): Promise<string[]> {
  const { ctx, wrk, connections, duration } = opts;
  const rounds = opts.rounds ?? 5;
  const variants: Variant[] = [
    { name: "bws", toml: (t) => t, port: freePort(), cpu: [], rps: [], bad: 0 },
    { name: "bws-edge", toml: withEdgeTables, port: freePort(), cpu: [], rps: [], bad: 0 },
  ];
  try {
    for (const v of variants) {
      const dir = `${ctx.tmp}/${v.name}-edge-rows`;
      await Deno.mkdir(`${dir}/static`, { recursive: true });
      await Deno.writeTextFile(`${dir}/static/index.html`, "<h1>static</h1>\n");
      await Deno.writeTextFile(
        `${dir}/bws.toml`,
        v.toml(bwsToml({
          port: v.port,
          backendPort: ctx.backendPort,
          streamPort: ctx.streamPort,
          accessLogPath: `${dir}/access.log`,
          staticDir: `${dir}/static`,
        })),
      );
      v.service = await opts.track(startService({
        name: `${v.name}-edge-rows`,
        command: Deno.execPath(),
        args: ["run", "-A", "--v8-flags=--expose-gc", "cli.ts", "-c", `${dir}/bws.toml`],
        cwd: ctx.repoRoot,
        logDir: ctx.tmp,
      }));
      const url = `http://127.0.0.1:${v.port}/api/bench`;
      await waitReady(v.service, url, { Host: BENCH_HOST }, 30_000);
      await runWrk({ url, connections, duration: 1, headers: { Host: BENCH_HOST }, binary: wrk });
    }
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a drift in the machine's load falls on both.
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const pid = v.service!.pid;
        const before = treeCpuTicks(pid);
        const result = await runWrk({
          url: `http://127.0.0.1:${v.port}/api/bench`,
          connections,
          duration,
          headers: { Host: BENCH_HOST },
          binary: wrk,
        });
        const cpuMicros = ((treeCpuTicks(pid) - before) / opts.ticksPerSecond) * 1e6;
        v.cpu.push(result.requests > 0 ? cpuMicros / result.requests : NaN);
        v.rps.push(result.requestsPerSecond);
        v.bad += result.non2xx + result.socketErrors;
      }
    }
  } finally {
    for (const v of variants) if (v.service) await opts.untrack(v.service);
  }
  const [plain, edge] = variants;
  const ratio = median(edge.cpu) / median(plain.cpu);
  const fmt = (v: Variant) =>
    `  ${v.name.padEnd(9)} CPU µs/req ${v.cpu.map((c) => c.toFixed(1)).join(" / ")} ` +
    `(median ${median(v.cpu).toFixed(1)}), req/s median ${median(v.rps).toFixed(0)}` +
    (v.bad > 0 ? `, ${v.bad} non-2xx or socket errors` : "");
  const ok = ratio <= 1.1 && plain.bad === 0 && edge.bad === 0;
  return [
    `edge protection on /api/ (access list + rate limit), ${rounds} alternating rounds of ` +
    `${duration} s each:`,
    fmt(plain),
    fmt(edge),
    `bws-edge CPU/request within 10 % of bws: ${ok ? "PASS" : "FAIL"} ` +
    `(${((ratio - 1) * 100).toFixed(1)} %)`,
  ];
}

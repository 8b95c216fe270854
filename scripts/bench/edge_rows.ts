/**
 * Edge protection's cost in `deno task bench`: one bws with the bench config plus a copy of the
 * benchmarked `/api/` route at `/edge-api/` that has an access list and a rate limit. wrk loads
 * `/api/bench` ("bws") and `/edge-api/bench` ("bws-edge") in turn for a few rounds, and their
 * CPU µs per request are compared (medians of the rounds, so a noisy neighbour on the shared
 * machine hurts one round, not the verdict). One process serves both, so the comparison is not
 * blurred by two processes' different JIT and memory layouts (measured: two processes with the
 * same config differ by several percent from run to run). The goal (issue 12): within 10 %.
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

/** The tables of the `/edge-api/` route. */
export const EDGE_TABLES = `
[sites.proxy.routes.access]
allow = ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]
deny = ["127.0.0.2", "203.0.113.0/24"]

[sites.proxy.routes.rate_limit]
rate = 1000000
burst = 1000000
`;

const API_ROUTE = /\[\[sites\.proxy\.routes\]\]\npath = "\/api\/"\nupstream = "app"\n/;

/** The path of the protected copy of the `/api/` route. */
export const EDGE_PATH = "/edge-api/";

/**
 * The bench config with a copy of its `/api/` route at {@link EDGE_PATH} carrying
 * {@link EDGE_TABLES}; `/api/` itself stays as it is.
 */
export function withEdgeRoute(toml: string): string {
  const m = API_ROUTE.exec(toml);
  if (m === null) {
    throw new Error('Cannot add an edge route to the bws bench config: no "/api/" route found');
  }
  const at = m.index + m[0].length;
  const route = m[0].replace('path = "/api/"', `path = "${EDGE_PATH}"`);
  return toml.slice(0, at) + "\n" + route + EDGE_TABLES + toml.slice(at);
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
  readonly path: string;
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
    { name: "bws", path: "/api/bench", cpu: [], rps: [], bad: 0 },
    { name: "bws-edge", path: `${EDGE_PATH}bench`, cpu: [], rps: [], bad: 0 },
  ];
  const port = freePort();
  const dir = `${ctx.tmp}/bws-edge-rows`;
  let service: Service | undefined;
  try {
    await Deno.mkdir(`${dir}/static`, { recursive: true });
    await Deno.writeTextFile(`${dir}/static/index.html`, "<h1>static</h1>\n");
    await Deno.writeTextFile(
      `${dir}/bws.toml`,
      withEdgeRoute(bwsToml({
        port,
        backendPort: ctx.backendPort,
        streamPort: ctx.streamPort,
        accessLogPath: `${dir}/access.log`,
        staticDir: `${dir}/static`,
      })),
    );
    service = await opts.track(startService({
      name: "bws-edge-rows",
      command: Deno.execPath(),
      args: ["run", "-A", "--v8-flags=--expose-gc", "cli.ts", "-c", `${dir}/bws.toml`],
      cwd: ctx.repoRoot,
      logDir: ctx.tmp,
    }));
    const pid = service.pid;
    for (const v of variants) {
      const url = `http://127.0.0.1:${port}${v.path}`;
      await waitReady(service, url, { Host: BENCH_HOST }, 30_000);
      await runWrk({ url, connections, duration: 1, headers: { Host: BENCH_HOST }, binary: wrk });
    }
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a drift in the machine's load falls on both.
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const before = treeCpuTicks(pid);
        const result = await runWrk({
          url: `http://127.0.0.1:${port}${v.path}`,
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
    if (service) await opts.untrack(service);
  }
  const [plain, edge] = variants;
  const ratio = median(edge.cpu) / median(plain.cpu);
  const fmt = (v: Variant) =>
    `  ${v.name.padEnd(9)} CPU µs/req ${v.cpu.map((c) => c.toFixed(1)).join(" / ")} ` +
    `(median ${median(v.cpu).toFixed(1)}), req/s median ${median(v.rps).toFixed(0)}` +
    (v.bad > 0 ? `, ${v.bad} non-2xx or socket errors` : "");
  const ok = ratio <= 1.1 && plain.bad === 0 && edge.bad === 0;
  return [
    `edge protection (access list + rate limit) on ${EDGE_PATH} beside /api/ without it, one ` +
    `bws, ${rounds} alternating rounds of ${duration} s each:`,
    fmt(plain),
    fmt(edge),
    `bws-edge CPU/request within 10 % of bws: ${ok ? "PASS" : "FAIL"} ` +
    `(${((ratio - 1) * 100).toFixed(1)} %)`,
  ];
}

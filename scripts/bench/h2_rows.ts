/**
 * HTTP/2 rows of `deno task bench`: h2load with prior knowledge (h2c) on a plain port, 32 streams
 * in flight (4 connections of 8, as wrk's 32 connections), against bws with the bench config and
 * nginx doing the same per-request work over h2c, in alternating rounds. bws answers HTTP/2
 * through an internal Deno.serve behind its own front end (docs/behaviour.md): these rows show
 * what that costs beside nginx. Shown, not judged: issue 11 sets no bar for HTTP/2.
 *
 * @module
 */

import { BENCH_HOST, nginxSameWorkConf } from "./configs.ts";
import { runH2load } from "./h2load.ts";
import { treeCpuTicks } from "./proc_stats.ts";
import { freePort, type Service } from "./process.ts";
import { type BenchContext, startBws, startNginx } from "./proxies.ts";
import { median } from "./report.ts";

/** What {@link runH2Rows} needs from the bench run. */
export interface H2RowsOptions {
  readonly ctx: BenchContext;
  /** Path of h2load. */
  readonly h2load: string;
  /** Path of nginx, when installed. */
  readonly nginx?: string;
  /** Seconds per h2load run. */
  readonly duration: number;
  /** Rounds per proxy. @default 5 */
  readonly rounds?: number;
  readonly ticksPerSecond: number;
  /** Registers a started service for cleanup (bench.ts's `track`). */
  readonly track: (s: Promise<Service>) => Promise<Service>;
  /** Stops a service and forgets it (bench.ts's `untrack`). */
  readonly untrack: (s: Service) => Promise<void>;
}

const CONNECTIONS = 4;
const STREAMS = 8;
const PATH = "/api/bench";

interface Proxy {
  readonly name: string;
  readonly service: Service;
  readonly url: string;
  cpu: number[];
  rps: number[];
  bad: number;
}

/** nginx-same-work with its plain port speaking HTTP/2 with prior knowledge. */
function nginxSameWorkH2c(dir: string, port: number, backendPort: number): string {
  const conf = nginxSameWorkConf(dir, port, backendPort);
  const listen = `listen 127.0.0.1:${port};`;
  if (!conf.includes(listen)) throw new Error(`Cannot make nginx speak h2c: no "${listen}"`);
  return conf.replace(listen, `listen 127.0.0.1:${port} http2;`);
}

/** h2load until one request succeeds (nginx's h2c port answers no HTTP/1.1 readiness probe). */
async function waitH2(o: H2RowsOptions, url: string, service: Service): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    if (service.exited()) throw new Error(`Cannot benchmark over HTTP/2: ${url}'s server exited`);
    try {
      const r = await runH2load({
        url,
        authority: BENCH_HOST,
        connections: 1,
        streams: 1,
        duration: 1,
        binary: o.h2load,
      });
      if (r.requests > 0 && r.bad === 0) return;
      last = `${r.requests} requests, ${r.bad} bad`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Cannot benchmark over HTTP/2: ${url} did not answer (${last})`);
}

/** Runs the rows; returns the lines to print. */
export async function runH2Rows(o: H2RowsOptions): Promise<string[]> {
  const rounds = o.rounds ?? 5;
  const proxies: Proxy[] = [];
  try {
    const bwsPort = freePort();
    const bws = await o.track(startBws(o.ctx, bwsPort, "bws-h2c"));
    proxies.push({
      name: "bws",
      service: bws,
      url: `http://127.0.0.1:${bwsPort}${PATH}`,
      cpu: [],
      rps: [],
      bad: 0,
    });
    if (o.nginx) {
      const port = freePort();
      const nginx = await o.track(
        startNginx(
          o.ctx,
          "nginx-same-work-h2c",
          o.nginx,
          (dir) => nginxSameWorkH2c(dir, port, o.ctx.backendPort),
        ),
      );
      proxies.push({
        name: "nginx-same-work",
        service: nginx,
        url: `http://127.0.0.1:${port}${PATH}`,
        cpu: [],
        rps: [],
        bad: 0,
      });
    }
    for (const p of proxies) await waitH2(o, p.url, p.service);
    const load = (p: Proxy, duration: number) =>
      runH2load({
        url: p.url,
        authority: BENCH_HOST,
        connections: CONNECTIONS,
        streams: STREAMS,
        duration,
        binary: o.h2load,
        cpus: o.ctx.loadCpus,
      });
    for (const p of proxies) await load(p, 1); // warm-up
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a drift in the machine's load falls on both.
      for (const p of r % 2 === 0 ? proxies : [...proxies].reverse()) {
        const before = treeCpuTicks(p.service.pid);
        const result = await load(p, o.duration);
        const micros = ((treeCpuTicks(p.service.pid) - before) / o.ticksPerSecond) * 1e6;
        p.cpu.push(result.requests > 0 ? micros / result.requests : NaN);
        p.rps.push(result.requestsPerSecond);
        p.bad += result.bad;
      }
    }
  } catch (error) {
    return [`HTTP/2 (h2c): skipped: ${(error as Error).message.split("\n")[0]}`];
  } finally {
    for (const p of proxies) await o.untrack(p.service);
  }
  const lines = [
    `HTTP/2 with prior knowledge (h2load, ${CONNECTIONS} connections x ${STREAMS} streams, ` +
    `${rounds} alternating rounds of ${o.duration} s; :authority ${BENCH_HOST}, path ${PATH}):`,
    ...proxies.map((p) =>
      `  ${p.name.padEnd(15)} CPU µs/req ${p.cpu.map((c) => c.toFixed(1)).join(" / ")} ` +
      `(median ${median(p.cpu).toFixed(1)}), req/s median ${median(p.rps).toFixed(0)}` +
      (p.bad > 0 ? `, ${p.bad} bad answers` : "")
    ),
  ];
  const [bws, nginx] = proxies;
  if (nginx !== undefined) {
    const perRound = bws.cpu.map((c, i) => c / nginx.cpu[i]);
    lines.push(
      `bws over HTTP/2: ${median(perRound).toFixed(2)}x nginx-same-work over h2c ` +
        `(median of ${rounds} rounds; per round ${perRound.map((x) => x.toFixed(2)).join(" ")}); ` +
        `not judged`,
    );
  }
  return lines;
}

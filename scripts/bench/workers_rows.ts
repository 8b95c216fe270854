/**
 * Benchmark rows for `server.workers` (SPEC 12): the bench config through bws with one thread
 * and with two worker threads, each loaded with wrk (two threads, nothing pinned: the kernel
 * places bws's threads, wrk's and the backend's), in turns so both see the same background
 * load. Prints the medians of requests/s, p99 and CPU µs per request of bws's process (every
 * thread), and the ratio of two workers to one; no bar.
 *
 * Run by `deno task bench` (skip with `--no-workers`), or alone:
 * `deno run -A scripts/bench/workers_rows.ts [--duration 10] [--connections 64]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BENCH_HOST, bwsToml, nginxBackendConf } from "./configs.ts";
import { freePort, type Service, startService, waitReady, which } from "./process.ts";
import { clockTicks, treeCpuTicks } from "./proc_stats.ts";
import { runWrk } from "./wrk.ts";

/** What {@link workersRows} needs. */
export interface WorkersRowsOptions {
  /** Root of the bws checkout (holds cli.ts). */
  readonly repoRoot: string;
  /** A directory for configs and logs (the caller removes it). */
  readonly tmp: string;
  /** Seconds of each run. */
  readonly duration: number;
  /** Runs of each configuration, taken in turn (medians are printed). @default 3 */
  readonly rounds?: number;
  readonly connections: number;
  /** The wrk executable. */
  readonly wrk: string;
  readonly ticksPerSecond: number;
  /** A backend answering `hello world\n` on 127.0.0.1 (bws's `/api/` goes there). */
  readonly backendPort: number;
}

/** One measured configuration. */
interface WorkersRow {
  readonly workers: number;
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly cpuMicrosPerRequest: number;
  readonly errors: number;
}

/** wrk threads: enough to load two bws threads, not pinned. */
const WRK_THREADS = 2;
/**
 * Every CPU: `deno task bench` pins itself (and so what it starts) to the load CPUs; these rows
 * are about bws spreading over all of them, so bws and wrk are started on all of them.
 */
const ALL_CPUS = `0-${Math.max(0, navigator.hardwareConcurrency - 1)}`;

/** The CPU model, for naming the machine the figures come from. */
export async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1].trim() ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

/** A running bws with `workers` threads. */
interface Running {
  readonly workers: number;
  readonly service: Service;
  readonly url: string;
}

async function startBws(opts: WorkersRowsOptions, workers: number): Promise<Running> {
  const dir = `${opts.tmp}/workers-${workers}`;
  await Deno.mkdir(`${dir}/static`, { recursive: true });
  await Deno.writeTextFile(`${dir}/static/index.html`, "<h1>static</h1>\n");
  const port = freePort();
  const toml = bwsToml({
    port,
    backendPort: opts.backendPort,
    streamPort: opts.backendPort,
    accessLogPath: `${dir}/access.log`,
    staticDir: `${dir}/static`,
  }).replace("[server]\n", `[server]\nworkers = ${workers}\n`);
  await Deno.writeTextFile(`${dir}/bws.toml`, toml);
  const service = await startService({
    name: `bws-workers-${workers}`,
    command: Deno.execPath(),
    args: ["run", "-A", "--v8-flags=--expose-gc", "cli.ts", "-c", `${dir}/bws.toml`],
    cwd: opts.repoRoot,
    logDir: opts.tmp,
    cpus: ALL_CPUS,
  });
  const url = `http://127.0.0.1:${port}/api/bench`;
  try {
    await waitReady(service, url, { Host: BENCH_HOST }, 30_000);
  } catch (err) {
    await service.stop();
    throw err;
  }
  return { workers, service, url };
}

async function measure(opts: WorkersRowsOptions, bws: Running, duration: number) {
  const load = () =>
    runWrk({
      url: bws.url,
      connections: opts.connections,
      duration,
      threads: WRK_THREADS,
      headers: { Host: BENCH_HOST },
      binary: opts.wrk,
      cpus: ALL_CPUS,
    });
  const before = treeCpuTicks(bws.service.pid);
  const result = await load();
  const after = treeCpuTicks(bws.service.pid);
  const cpuMicros = ((after - before) / opts.ticksPerSecond) * 1e6;
  return {
    requestsPerSecond: result.requestsPerSecond,
    p99Ms: result.p99Ms,
    cpuMicrosPerRequest: result.requests > 0 ? cpuMicros / result.requests : NaN,
    errors: result.non2xx + result.socketErrors,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Measures one thread and two workers, `rounds` runs each taken in turn (1, 2, 1, 2, …) so that
 * both see the same background load; returns the lines to print (medians).
 */
export async function workersRows(opts: WorkersRowsOptions): Promise<string[]> {
  const running: Running[] = [];
  try {
    for (const workers of [1, 2]) running.push(await startBws(opts, workers));
    for (const bws of running) await measure(opts, bws, 1); // warm up
    const runs = new Map<number, Awaited<ReturnType<typeof measure>>[]>(
      running.map((b) => [b.workers, []]),
    );
    const rounds = opts.rounds ?? 3;
    for (let round = 0; round < rounds; round++) {
      for (const bws of running) {
        runs.get(bws.workers)!.push(await measure(opts, bws, opts.duration));
      }
    }
    const rows: WorkersRow[] = running.map((b) => {
      const r = runs.get(b.workers)!;
      return {
        workers: b.workers,
        requestsPerSecond: median(r.map((x) => x.requestsPerSecond)),
        p99Ms: median(r.map((x) => x.p99Ms)),
        cpuMicrosPerRequest: median(r.map((x) => x.cpuMicrosPerRequest)),
        errors: r.reduce((n, x) => n + x.errors, 0),
      };
    });
    const [one, two] = rows;
    const lines = [
      `server.workers: bws bench config, wrk -t${WRK_THREADS} -c${opts.connections} ` +
      `-d${opts.duration}s × ${rounds} runs each in turn (medians), bws and wrk unpinned; ` +
      `${navigator.hardwareConcurrency} CPUs (${await cpuModel()})`,
    ];
    for (const r of rows) {
      lines.push(
        `  workers = ${r.workers}: ${r.requestsPerSecond.toFixed(0)} req/s, p99 ${
          r.p99Ms.toFixed(2)
        } ms, ${r.cpuMicrosPerRequest.toFixed(1)} µs CPU/req` +
          (r.errors ? `, ${r.errors} errors` : ""),
      );
    }
    lines.push(
      `  workers = 2 / workers = 1: ${
        (two.requestsPerSecond / one.requestsPerSecond).toFixed(2)
      }× requests/s, ${
        (two.cpuMicrosPerRequest / one.cpuMicrosPerRequest).toFixed(2)
      }× CPU per request (wrk and the backend run on the same CPUs)`,
    );
    return lines;
  } finally {
    await Promise.all(running.map((b) => b.service.stop()));
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "10" },
      connections: { type: "string", default: "64" },
    },
  });
  const wrk = await which("wrk");
  if (!wrk) {
    console.error('Cannot run benchmark "wrk": not installed (apt-get install wrk)');
    Deno.exit(1);
  }
  const repoRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const tmp = await Deno.makeTempDir({ prefix: "bws-workers-bench-" });
  const backendPort = freePort();
  const nginx = await which("nginx");
  let backend: Service | undefined;
  try {
    if (nginx) {
      const dir = `${tmp}/backend`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(`${dir}/nginx.conf`, nginxBackendConf(dir, backendPort));
      backend = await startService({
        name: "backend-nginx",
        command: nginx,
        args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
        logDir: tmp,
      });
    } else {
      backend = await startService({
        name: "backend-deno",
        command: Deno.execPath(),
        args: [
          "run",
          "-A",
          "--no-config",
          `${repoRoot}/scripts/bench/backend.ts`,
          `${backendPort}`,
        ],
        logDir: tmp,
      });
    }
    await waitReady(backend, `http://127.0.0.1:${backendPort}/`);
    const lines = await workersRows({
      repoRoot,
      tmp,
      duration: Number(values.duration),
      connections: Number(values.connections),
      wrk,
      ticksPerSecond: await clockTicks(),
      backendPort,
    });
    for (const line of lines) console.log(line);
  } finally {
    await backend?.stop();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

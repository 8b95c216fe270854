/**
 * `deno task bench`: bws beside a minimal Deno proxy, nginx, HAProxy and Caddy (when installed),
 * each as its own process in front of one shared backend, loaded with wrk on loopback. Prints
 * requests/s, p99 and CPU µs per request of the proxy's process tree, as ratios to nginx (or to
 * the minimal Deno proxy when nginx is missing), then a large-body memory check through bws.
 *
 * Flags: `--duration S` (10), `--connections N` (32), `--only bws,nginx,…`, `--large` (1 GiB
 * each way; default 256 MiB), `--no-large`, `--websocket`, `--no-compress` (skip the static
 * compression rows of `bench/compress_rows.ts`), `--no-workers` (skip the `server.workers`
 * rows of `bench/workers_rows.ts`), `--profile` (bws under `--cpu-prof`, top self-time
 * functions printed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BENCH_HOST } from "./bench/configs.ts";
import { compressRows } from "./bench/compress_rows.ts";
import { workersRows } from "./bench/workers_rows.ts";
import { runLarge } from "./bench/large.ts";
import { freePort, type Service, tail, waitReady, which } from "./bench/process.ts";
import { clockTicks, statusBytes, treeCpuTicks } from "./bench/proc_stats.ts";
import { busyByFile, summarizeCpuProfile } from "./bench/cpu_profile.ts";
import {
  ALL_PROXIES,
  type BenchContext,
  startDenoBackend,
  startNginxBackend,
} from "./bench/proxies.ts";
import { formatTable, type Row, verdicts } from "./bench/report.ts";
import { runWrk } from "./bench/wrk.ts";

const MiB = 1024 * 1024;
const USAGE = `Usage: deno task bench [--duration 10] [--connections 32] [--only bws,nginx]
                       [--large | --no-large] [--websocket] [--no-compress] [--no-workers]
                       [--profile]`;

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        duration: { type: "string", default: "10" },
        connections: { type: "string", default: "32" },
        only: { type: "string" },
        large: { type: "boolean", default: false },
        "no-large": { type: "boolean", default: false },
        websocket: { type: "boolean", default: false },
        "no-compress": { type: "boolean", default: false },
        "no-workers": { type: "boolean", default: false },
        profile: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`Cannot run benchmark: ${(err as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
}
const flags = parseFlags();
if (flags.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const duration = Number(flags.duration);
const connections = Number(flags.connections);
if (!(duration >= 1 && duration <= 600) || !(connections >= 1 && connections <= 10_000)) {
  console.error(
    `Cannot run benchmark: --duration must be 1-600 s, --connections 1-10000\n${USAGE}`,
  );
  Deno.exit(2);
}
const only = flags.only?.split(",").map((s) => s.trim()).filter(Boolean);
const largeBytes = flags["no-large"] ? 0 : flags.large ? 1024 * MiB : 256 * MiB;
const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const services = new Set<Service>();
const tmp = await Deno.makeTempDir({ prefix: "bws-bench-" });
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.all([...services].map((s) => s.stop()));
  services.clear();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

async function track(service: Promise<Service>): Promise<Service> {
  const s = await service;
  services.add(s);
  return s;
}

async function untrack(service: Service): Promise<void> {
  await service.stop();
  services.delete(service);
}

const onInterrupt = () => {
  console.error("\ninterrupted: stopping everything");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onInterrupt);
Deno.addSignalListener("SIGTERM", onInterrupt);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const wrk = await which("wrk");
  if (!wrk) {
    console.error('Cannot run benchmark "wrk": not installed (apt-get install wrk)');
    return 1;
  }
  const ticksPerSecond = await clockTicks();
  const nginxPath = await which("nginx");
  const streamPort = freePort();
  const ctx: BenchContext = {
    repoRoot,
    tmp,
    backendPort: nginxPath ? freePort() : streamPort,
    streamPort,
    bwsDenoFlags: flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${tmp}/profile`] : [],
  };

  // One backend for everyone; the Deno backend also serves the large-body routes.
  const needStream = largeBytes > 0 || !nginxPath;
  const stream = needStream ? await track(startDenoBackend(ctx, ctx.streamPort)) : undefined;
  if (stream) await waitReady(stream, `http://127.0.0.1:${ctx.streamPort}/`);
  let backendNote: string;
  if (nginxPath) {
    const backend = await track(startNginxBackend(ctx, nginxPath));
    await waitReady(backend, `http://127.0.0.1:${ctx.backendPort}/`);
    backendNote = 'backend: nginx (1 worker) returning "hello world\\n"';
  } else {
    backendNote = "backend: scripts/bench/backend.ts (nginx not installed)";
  }

  console.log(
    `bws bench: wrk -t1 -c${connections} -d${duration}s --latency, Host: ${BENCH_HOST}, ` +
      `path /api/bench; ${navigator.hardwareConcurrency} CPUs; ${backendNote}`,
  );
  const rows: Row[] = [];
  const notes: string[] = [];
  const largeLines: string[] = [];

  for (const spec of ALL_PROXIES) {
    if (only && !only.includes(spec.name)) continue;
    const binaryPath = await which(spec.binary);
    if (!binaryPath) {
      notes.push(`${spec.name}: skipped, "${spec.binary}" not installed`);
      continue;
    }
    const port = freePort();
    const url = `http://127.0.0.1:${port}/api/bench`;
    let service: Service | undefined;
    try {
      service = await track(spec.start(ctx, port, binaryPath));
      await waitReady(service, url, { Host: BENCH_HOST }, 30_000);
      const check = await fetch(url, { headers: { Host: BENCH_HOST } });
      const body = await check.text();
      if (body !== "hello world\n") {
        throw new Error(`Cannot benchmark "${spec.name}": unexpected body ${JSON.stringify(body)}`);
      }
      await runWrk({ url, connections, duration: 1, headers: { Host: BENCH_HOST }, binary: wrk });
      await sleep(200);
      const before = treeCpuTicks(service.pid);
      const result = await runWrk({
        url,
        connections,
        duration,
        headers: { Host: BENCH_HOST },
        binary: wrk,
      });
      const after = treeCpuTicks(service.pid);
      const cpuMicros = ((after - before) / ticksPerSecond) * 1e6;
      const row: Row = {
        name: spec.name,
        requestsPerSecond: result.requestsPerSecond,
        p99Ms: result.p99Ms,
        cpuMicrosPerRequest: result.requests > 0 ? cpuMicros / result.requests : NaN,
        requests: result.requests,
        non2xx: result.non2xx,
        socketErrors: result.socketErrors,
        peakRss: spec.name === "bws" ? statusBytes(service.pid, "VmHWM") : undefined,
      };
      rows.push(row);
      notes.push(spec.note);
      console.log(
        `  ${spec.name}: ${row.requestsPerSecond.toFixed(0)} req/s, p99 ${
          row.p99Ms.toFixed(2)
        } ms, ` +
          `${row.cpuMicrosPerRequest.toFixed(1)} µs CPU/req` +
          (row.non2xx || row.socketErrors
            ? `, ${row.non2xx} non-2xx, ${row.socketErrors} socket errors`
            : ""),
      );
      if (spec.name === "bws" && largeBytes > 0 && stream) {
        largeLines.push(...await large(spec.name, service, port));
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      notes.push(`${spec.name}: FAILED: ${message.split("\n")[0]}`);
      console.error(message);
    } finally {
      if (service) await untrack(service);
    }
    if (spec.name === "bws" && flags.profile) await printProfile();
    if (spec.name === "deno-minimal" && largeBytes > 0 && stream) {
      // For comparison: the same transfers through a second minimal proxy in front of the
      // Deno backend (the first one fronts the shared backend, which has no large routes).
      let minimal: Service | undefined;
      const minimalPort = freePort();
      try {
        minimal = await track(
          spec.start({ ...ctx, backendPort: ctx.streamPort }, minimalPort, binaryPath),
        );
        await waitReady(minimal, `http://127.0.0.1:${minimalPort}/`);
        largeLines.push(...await large(spec.name, minimal, minimalPort));
      } catch (error) {
        largeLines.push(`large bodies through deno-minimal: FAILED: ${error}`);
      } finally {
        if (minimal) await untrack(minimal);
      }
    }
  }

  const baseline = rows.some((r) => r.name === "nginx")
    ? "nginx"
    : rows.some((r) => r.name === "deno-minimal")
    ? "deno-minimal"
    : undefined;
  console.log("");
  console.log(formatTable(rows, baseline));
  console.log("");
  for (const line of verdicts(rows)) console.log(line);
  for (const line of largeLines) console.log(line);
  console.log("");
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    "note: CPU µs/req = utime+stime delta of the proxy's process tree (/proc, " +
      `${ticksPerSecond} ticks/s) over the wrk run / completed requests; the backend and wrk ` +
      "are not counted.",
  );
  if (!flags["no-compress"]) {
    const lines = await compressRows({
      repoRoot,
      tmp,
      duration,
      connections,
      wrk,
      nginx: nginxPath,
      ticksPerSecond,
    });
    console.log("");
    for (const line of lines) console.log(line);
  }
  if (!flags["no-workers"]) {
    const lines = await workersRows({
      repoRoot,
      tmp,
      duration,
      connections,
      wrk,
      ticksPerSecond,
      backendPort: ctx.backendPort,
    });
    console.log("");
    for (const line of lines) console.log(line);
  }
  if (flags.websocket) await websocket();
  return 0;
}

/** Large streamed bodies through a running proxy; returns the lines to print. */
async function large(name: string, service: Service, port: number): Promise<string[]> {
  const r = await runLarge({
    base: `http://127.0.0.1:${port}`,
    host: BENCH_HOST,
    pid: service.pid,
    bytes: largeBytes,
  });
  // Each phase against the RSS it started from: memory the upload left behind is not counted
  // again as download growth.
  const upGrowth = r.uploadPeakRss - r.baselineRss;
  const downGrowth = r.downloadPeakRss - r.downloadStartRss;
  const growth = Math.max(upGrowth, downGrowth);
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  const rate = (t: { bytes: number; seconds: number }) =>
    `${(t.bytes / MiB).toFixed(0)} MiB in ${t.seconds.toFixed(1)} s ` +
    `(${(t.bytes / MiB / t.seconds).toFixed(0)} MiB/s)`;
  const failed = (t: { seconds: number; detail: string }) =>
    `FAILED after ${t.seconds.toFixed(1)} s (${t.detail})`;
  const ok = r.upload.ok && r.download.ok;
  const pass = ok && growth < 64 * MiB;
  return [
    `large bodies through ${name}: upload ${r.upload.ok ? rate(r.upload) : failed(r.upload)}` +
    `; download ${r.download.ok ? rate(r.download) : failed(r.download)}`,
    `${name} RSS growth < 64 MB (${largeBytes / MiB} MiB each way): ${pass ? "PASS" : "FAIL"} ` +
    `(upload ${mib(r.baselineRss)} -> peak ${mib(r.uploadPeakRss)} = +${mib(upGrowth)}; ` +
    `download ${mib(r.downloadStartRss)} -> peak ${mib(r.downloadPeakRss)} = ` +
    `+${mib(downGrowth)}${ok ? "" : "; a transfer failed"})`,
  ];
}

/** Summarizes the .cpuprofile bws wrote on exit and keeps a copy outside the temp dir. */
async function printProfile(): Promise<void> {
  const dir = `${tmp}/profile`;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.endsWith(".cpuprofile")) continue;
      const keep = `${Deno.env.get("TMPDIR") ?? "/tmp"}/bws-bench-${Date.now()}.cpuprofile`;
      await Deno.copyFile(`${dir}/${entry.name}`, keep);
      const profile = JSON.parse(await Deno.readTextFile(keep));
      console.log(`\nbws CPU profile (kept at ${keep}), top self time, share of busy time:`);
      for (const line of summarizeCpuProfile(profile, 25, `file://${repoRoot}/`)) {
        console.log(`  ${line}`);
      }
      console.log("bws busy time by innermost project file on the stack:");
      for (const t of busyByFile(profile, `file://${repoRoot}/`).slice(0, 12)) {
        console.log(`  ${(t.share * 100).toFixed(1).padStart(5)}%  ${t.frame}`);
      }
      return;
    }
  } catch {
    // Reported below.
  }
  console.log("bws CPU profile: none written (bws must exit cleanly on SIGTERM)");
}

/** Runs the WebSocket relay benchmark when another engineer's script exists. */
async function websocket(): Promise<void> {
  const path = `${repoRoot}/src/websocket/relay_bench.ts`;
  try {
    await Deno.stat(path);
  } catch {
    console.log("websocket: skipped, src/websocket/relay_bench.ts does not exist yet");
    return;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    cwd: repoRoot,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout).trim();
    console.log(`websocket (src/websocket/relay_bench.ts, exit ${out.code}):`);
    for (const line of text.split("\n").slice(-20)) console.log(`  ${line}`);
    if (!out.success) {
      console.log(new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n"));
    }
  } finally {
    clearTimeout(guard);
  }
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  for (const s of services) {
    const log = await tail(s.logPath, 10);
    if (log) console.error(`--- ${s.name} log ---\n${log}`);
  }
} finally {
  await cleanup();
  Deno.removeSignalListener("SIGINT", onInterrupt);
  Deno.removeSignalListener("SIGTERM", onInterrupt);
}
Deno.exit(code);

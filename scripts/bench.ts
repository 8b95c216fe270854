/**
 * `deno task bench`: bws beside a minimal Deno proxy, two Deno floors (a raw `Deno.listen`
 * front end and `Deno.serve`, each with a raw upstream pool), nginx (bare and doing bws's
 * per-request work), HAProxy and Caddy (when installed), each as its own process in front of
 * one shared backend, loaded with wrk on loopback. Prints requests/s, p99 and CPU µs per
 * request of the proxy's process tree, as ratios to nginx (or to the minimal Deno proxy when
 * nginx is missing), the CPU bars bws is held to, then HTTPS rows (one certificate, and SNI
 * with two) beside nginx with the same certificates, then a large-body memory check through
 * bws. `--websocket` runs the WebSocket rows instead: CPU per relayed message of bws beside
 * nginx (and HAProxy, Caddy and two Deno floors).
 *
 * With taskset and two or more CPUs, the proxy under test runs alone on the last CPU and the
 * backend and wrk on the others (`--no-pin` turns it off); the WebSocket rows are not pinned.
 *
 * Every proxy of a table runs from the start and they take turns under load, `--rounds` times
 * (see scripts/bench/measure.ts), so ratios are not at the mercy of when other work on a shared
 * machine happened to run.
 *
 * Then bws with and without edge protection on a copy of the bench route (`scripts/bench/edge_rows.ts`;
 * `--only bws-edge` runs just that), HTTP/2 with prior knowledge beside nginx when h2load is
 * installed (`bench/h2_rows.ts`), the static compression rows (`bench/compress_rows.ts`),
 * and bws with one thread and with two worker threads, unpinned (`bench/workers_rows.ts`).
 *
 * Flags: `--duration S` (10, measured seconds per proxy), `--rounds N` (5), `--connections N`
 * (32), `--only bws,nginx,…`, `--large` (1 GiB each way; default 256 MiB), `--no-large`,
 * `--no-https`, `--no-h2`, `--websocket`, `--no-pin`, `--no-compress`, `--no-workers`, `--profile` (bws
 * under `--cpu-prof`, top self-time
 * functions printed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BENCH_HOST, TLS_NAME } from "./bench/configs.ts";
import { compressRows } from "./bench/compress_rows.ts";
import { runH2Rows } from "./bench/h2_rows.ts";
import { runHttpsRows } from "./bench/https_rows.ts";
import { runLarge } from "./bench/large.ts";
import {
  describeRound,
  type LoadOptions,
  measureInTurns,
  type RowTarget,
  slotSeconds,
  warmupTurns,
} from "./bench/measure.ts";
import { freePort, type Service, ServiceSet, tail, waitReady, which } from "./bench/process.ts";
import { clockTicks } from "./bench/proc_stats.ts";
import { busyByFile, summarizeCpuProfile } from "./bench/cpu_profile.ts";
import { runEdgeRows } from "./bench/edge_rows.ts";
import {
  ALL_PROXIES,
  type BenchContext,
  type ProxySpec,
  startDenoBackend,
  startNginxBackend,
} from "./bench/proxies.ts";
import {
  formatTable,
  formatWsTable,
  HTTPS_ROWS,
  httpsLines,
  verdicts,
  wsVerdict,
} from "./bench/report.ts";
import { runWebSocketRows, WS_RELAY_NAMES } from "./bench/ws_rows.ts";
import { workersRows } from "./bench/workers_rows.ts";

const MiB = 1024 * 1024;
const USAGE = `Usage: deno task bench [--duration 10] [--rounds 5] [--connections 32]
                       [--only bws,nginx] [--large | --no-large] [--no-https] [--no-h2] [--no-pin]
                       [--no-compress] [--no-workers] [--profile]
       deno task bench --websocket [--only bws,nginx]`;

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        duration: { type: "string", default: "10" },
        connections: { type: "string", default: "32" },
        rounds: { type: "string", default: "5" },
        only: { type: "string" },
        large: { type: "boolean", default: false },
        "no-large": { type: "boolean", default: false },
        "no-https": { type: "boolean", default: false },
        "no-h2": { type: "boolean", default: false },
        websocket: { type: "boolean", default: false },
        "no-compress": { type: "boolean", default: false },
        "no-pin": { type: "boolean", default: false },
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
const rounds = Number(flags.rounds);
if (
  !(duration >= 1 && duration <= 600) || !(connections >= 1 && connections <= 10_000) ||
  !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 100)
) {
  console.error(
    "Cannot run benchmark: --duration must be 1-600 s, --connections 1-10000, --rounds " +
      `1-100\n${USAGE}`,
  );
  Deno.exit(2);
}
const only = flags.only?.split(",").map((s) => s.trim()).filter(Boolean);
const known = new Set([...ALL_PROXIES.map((p) => p.name), ...WS_RELAY_NAMES, "bws-edge"]);
const unknown = only?.filter((name) => !known.has(name)) ?? [];
if (unknown.length > 0) {
  console.error(
    `Cannot run benchmark: --only names unknown rows "${unknown.join(",")}" (known: ` +
      `${[...known].join(", ")})\n${USAGE}`,
  );
  Deno.exit(2);
}
const largeBytes = flags["no-large"] ? 0 : flags.large ? 1024 * MiB : 256 * MiB;
const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const services = new ServiceSet();
const tmp = await Deno.makeTempDir({ prefix: "bws-bench-" });
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await services.stopAll();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}

const onInterrupt = () => {
  console.error("\ninterrupted: stopping everything");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onInterrupt);
Deno.addSignalListener("SIGTERM", onInterrupt);

/**
 * CPU lists for the proxy under test (the last CPU) and for everything else (the others, this
 * process included), or undefined when pinning is off, taskset is missing or fails, or there
 * is one CPU.
 */
async function pinning(): Promise<{ proxy: string; load: string } | undefined> {
  const cpus = navigator.hardwareConcurrency;
  if (flags["no-pin"] || cpus < 2 || !(await which("taskset"))) return undefined;
  const proxy = String(cpus - 1);
  const load = cpus === 2 ? "0" : `0-${cpus - 2}`;
  const self = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", load, String(Deno.pid)],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return self?.success ? { proxy, load } : undefined;
}

async function main(): Promise<number> {
  if (flags.websocket) {
    await websocket();
    return 0;
  }
  const wrk = await which("wrk");
  if (!wrk) {
    console.error('Cannot run benchmark "wrk": not installed (apt-get install wrk)');
    return 1;
  }
  const ticksPerSecond = await clockTicks();
  const nginxPath = await which("nginx");
  const pins = await pinning();
  const streamPort = freePort();
  const ctx: BenchContext = {
    repoRoot,
    tmp,
    backendPort: nginxPath ? freePort() : streamPort,
    streamPort,
    bwsDenoFlags: flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${tmp}/profile`] : [],
    proxyCpus: pins?.proxy,
    loadCpus: pins?.load,
  };
  const load: LoadOptions = {
    connections,
    duration,
    rounds,
    wrk,
    cpus: pins?.load,
    ticksPerSecond,
  };

  // One backend for everyone; the Deno backend also serves the large-body routes.
  const needStream = largeBytes > 0 || !nginxPath;
  const stream = needStream
    ? await services.track(startDenoBackend(ctx, ctx.streamPort))
    : undefined;
  if (stream) await waitReady(stream, `http://127.0.0.1:${ctx.streamPort}/`);
  let backendNote: string;
  if (nginxPath) {
    const backend = await services.track(startNginxBackend(ctx, nginxPath));
    await waitReady(backend, `http://127.0.0.1:${ctx.backendPort}/`);
    backendNote = 'backend: nginx (1 worker) returning "hello world\\n"';
  } else {
    backendNote = "backend: scripts/bench/backend.ts (nginx not installed)";
  }

  console.log(
    `bws bench: wrk -t1 -c${connections} --latency, Host: ${BENCH_HOST}, path /api/bench; ` +
      `each proxy ${warmupTurns(duration, rounds)} warm-up and ${rounds} measured slots of ` +
      `${slotSeconds(duration, rounds)} s, taking turns; ` +
      `${navigator.hardwareConcurrency} CPUs; ` +
      (pins
        ? `proxy pinned to CPU ${pins.proxy}, backend and wrk to CPU ${pins.load}`
        : "nothing pinned") +
      `; ${backendNote}`,
  );
  const notes: string[] = [];
  const largeLines: string[] = [];

  // Every proxy runs from the start; they take turns under load (see measure.ts).
  const running: { spec: ProxySpec; target: RowTarget; port: number; binaryPath: string }[] = [];
  for (const spec of ALL_PROXIES) {
    if (only && !only.includes(spec.name)) continue;
    const binaryPath = await which(spec.binary);
    if (!binaryPath) {
      notes.push(`${spec.name}: skipped, "${spec.binary}" not installed`);
      continue;
    }
    const port = freePort();
    const url = `http://127.0.0.1:${port}/api/bench`;
    const headers = { Host: BENCH_HOST };
    let service: Service | undefined;
    try {
      service = await services.track(spec.start(ctx, port, binaryPath));
      await waitReady(service, url, headers, 30_000);
      const body = await (await fetch(url, { headers })).text();
      if (body !== "hello world\n") {
        throw new Error(`Cannot benchmark "${spec.name}": unexpected body ${JSON.stringify(body)}`);
      }
      const target = { name: spec.name, service, url, headers, peakRss: spec.name === "bws" };
      running.push({ spec, target, port, binaryPath });
      notes.push(spec.note);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      notes.push(`${spec.name}: FAILED: ${message.split("\n")[0]}`);
      console.error(message);
      if (service) await services.stop(service);
    }
  }
  const { rows, failures } = await measureInTurns(
    running.map((r) => r.target),
    load,
    (round, cpu) => console.log(describeRound(round, cpu)),
  );
  for (const [name, message] of failures) notes.push(`${name}: FAILED: ${message}`);

  for (const { spec, target, port, binaryPath } of running) {
    if (spec.name === "bws" && largeBytes > 0 && stream && !failures.has("bws")) {
      try {
        largeLines.push(...await large(spec.name, target.service, port));
      } catch (error) {
        largeLines.push(`large bodies through bws: FAILED: ${error}`);
      }
    }
    if (spec.name === "deno-minimal" && largeBytes > 0 && stream) {
      // For comparison: the same transfers through a second minimal proxy in front of the
      // Deno backend (the first one fronts the shared backend, which has no large routes).
      let minimal: Service | undefined;
      const minimalPort = freePort();
      try {
        minimal = await services.track(
          spec.start({ ...ctx, backendPort: ctx.streamPort }, minimalPort, binaryPath),
        );
        await waitReady(minimal, `http://127.0.0.1:${minimalPort}/`);
        largeLines.push(...await large(spec.name, minimal, minimalPort));
      } catch (error) {
        largeLines.push(`large bodies through deno-minimal: FAILED: ${error}`);
      } finally {
        if (minimal) await services.stop(minimal);
      }
    }
  }
  for (const { target } of running) await services.stop(target.service);
  if (flags.profile && running.some((r) => r.spec.name === "bws")) await printProfile();

  let https: Awaited<ReturnType<typeof runHttpsRows>> | undefined;
  if (!flags["no-https"]) {
    console.log(`HTTPS rows (wrk over TLS, keep-alive, SNI "${TLS_NAME}"):`);
    https = await runHttpsRows({ ctx, services, load, nginxPath, only });
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
  if (https && https.rows.length > 0) {
    const httpsBase = https.rows.some((r) => r.name === HTTPS_ROWS.sameWorkOne)
      ? HTTPS_ROWS.sameWorkOne
      : undefined;
    console.log("");
    console.log(formatTable(https.rows, httpsBase));
    console.log("");
    for (const line of httpsLines(https.rows)) console.log(line);
  }
  for (const line of largeLines) console.log(line);
  console.log("");
  for (const note of notes) console.log(`note: ${note}`);
  for (const note of https?.notes ?? []) console.log(`note: https: ${note}`);
  console.log(
    "note: CPU µs/req = utime+stime delta of the proxy's process tree (/proc, " +
      `${ticksPerSecond} ticks/s) over its wrk slots / requests completed in them; the ` +
      "backend and wrk are not counted.",
  );
  const h2load = flags["no-h2"] ? null : await which("h2load");
  if (h2load && (!only || only.includes("bws"))) {
    const lines = await runH2Rows({
      ctx,
      h2load,
      nginx: nginxPath,
      duration: slotSeconds(duration, rounds),
      rounds,
      ticksPerSecond,
      track: (s: Promise<Service>) => services.track(s),
      untrack: (s: Service) => services.stop(s),
    });
    console.log("");
    for (const line of lines) console.log(line);
  }
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
  if (!only || only.includes("bws-edge")) {
    const opts = {
      ctx,
      wrk,
      connections,
      duration: slotSeconds(duration, rounds),
      rounds,
      ticksPerSecond,
      track: (s: Promise<Service>) => services.track(s),
      untrack: (s: Service) => services.stop(s),
    };
    for (const line of ["", ...await runEdgeRows(opts)]) console.log(line);
  }
  if (!flags["no-workers"] && (!only || only.includes("bws"))) {
    const lines = await workersRows({
      repoRoot,
      tmp,
      duration: slotSeconds(duration, rounds),
      rounds,
      connections,
      wrk,
      ticksPerSecond,
      backendPort: ctx.backendPort,
    });
    console.log("");
    for (const line of lines) console.log(line);
  }
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

/** CPU per relayed WebSocket message through bws and the other relays; prints the table. */
async function websocket(): Promise<void> {
  // Not pinned: with the client and the echo upstream sharing one CPU, every relay waits on
  // them and pays its syscalls per message or two (measured: nginx, bws and a raw Deno relay
  // all 9-10 µs/msg pinned, 3-5 µs unpinned), which hides the differences this row is for.
  const ctx: BenchContext = {
    repoRoot,
    tmp,
    backendPort: freePort(), // bws's HTTP routes are not used here
    streamPort: freePort(),
  };
  console.log(
    `bws bench --websocket: ${navigator.hardwareConcurrency} CPUs, nothing pinned ` +
      "(pinned, the client and echo upstream set every relay's pace)",
  );
  const result = await runWebSocketRows({ ctx, services, only, rounds: 7 });
  console.log(result.title);
  console.log(
    formatWsTable(result.rows, result.rows.some((r) => r.name === "nginx") ? "nginx" : undefined),
  );
  console.log("");
  console.log(wsVerdict(result.rows));
  for (const note of result.notes) console.log(`note: websocket: ${note}`);
  console.log(
    "note: websocket CPU = run time of every thread of the relay's process tree " +
      "(/proc/<pid>/task/<tid>/schedstat) over a round / messages echoed; the client and the " +
      "echo upstream are not counted.",
  );
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  for (const s of services.list()) {
    const log = await tail(s.logPath, 10);
    if (log) console.error(`--- ${s.name} log ---\n${log}`);
  }
} finally {
  await cleanup();
  Deno.removeSignalListener("SIGINT", onInterrupt);
  Deno.removeSignalListener("SIGTERM", onInterrupt);
}
Deno.exit(code);

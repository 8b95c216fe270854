/**
 * Benchmark rows for static compression (SPEC 11): one compressible 16 KiB file served by bws
 * with gzip, brotli and zstd (and as it is), beside nginx with `gzip on` at bws's gzip level for
 * such files, each loaded with wrk. Prints requests/s and CPU µs per request of the server's
 * process tree; no bar.
 *
 * bws compresses a small file once per (path, mtime, coding) and serves it from memory; nginx's
 * `gzip on` compresses on every request (its `gzip_static` would serve a `.gz` sibling instead).
 * The rows measure each server as configured out of the box for this job.
 *
 * Run by `deno task bench` (skip with `--no-compress`), or alone:
 * `deno run -A scripts/bench/compress_rows.ts [--duration 10] [--connections 32]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { CACHED_LEVELS } from "../../src/compress/levels.ts";
import { freePort, type Service, startService, waitReady, which } from "./process.ts";
import { clockTicks, treeCpuTicks } from "./proc_stats.ts";
import { runWrk } from "./wrk.ts";

/** What {@link compressRows} needs. */
export interface CompressRowsOptions {
  /** Root of the bws checkout (holds cli.ts). */
  readonly repoRoot: string;
  /** A directory for configs, files and logs (the caller removes it). */
  readonly tmp: string;
  readonly duration: number;
  readonly connections: number;
  /** The wrk executable. */
  readonly wrk: string;
  /** The nginx executable, or undefined to print bws's rows alone. */
  readonly nginx: string | undefined;
  readonly ticksPerSecond: number;
}

/** One measured row. */
interface CompressRow {
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly cpuMicrosPerRequest: number;
  /** Body bytes of one response as sent. */
  readonly bodyBytes: number;
  readonly errors: number;
}

const FILE_SIZE = 16 * 1024;
const HOST = "static.bench.test";
const CODINGS = ["gzip", "br", "zstd", "identity"] as const;

/** 16 KiB of this repository's prose (compressible like real HTML, not one repeated line). */
async function benchFile(repoRoot: string): Promise<Uint8Array> {
  const text = await Deno.readFile(`${repoRoot}/docs/behaviour.md`);
  const out = new Uint8Array(FILE_SIZE);
  for (let at = 0; at < FILE_SIZE; at += text.length) out.set(text.subarray(0, FILE_SIZE - at), at);
  return out;
}

function bwsConfig(port: number, root: string): string {
  return `[server]
name = "bws compress bench"

[logging]
level = "warn"
access_log = false

[[sites]]
name = "static"
hostname = "${HOST}"
port = ${port}
bind = "127.0.0.1"
static_dir = "${root}"

[sites.compression]
static = true
algorithms = ["zstd", "br", "gzip"]
`;
}

function nginxConfig(dir: string, port: number, root: string, level: number): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${dir}/${kind}_temp;`)
    .join("\n");
  // Started as root, nginx's worker would run as nobody, who cannot read the 0700 temp dir.
  const user = Deno.uid() === 0 ? "user root;\n" : "";
  return `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${temp}
  include /etc/nginx/mime.types;
  etag on;
  gzip on;
  gzip_comp_level ${level};
  gzip_min_length 1024;
  gzip_vary on;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`;
}

/** The coding and body size one request gets, checked before the load. */
async function probe(url: string, coding: string, expected: Uint8Array): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-D",
      "/dev/stderr",
      "-H",
      `host: ${HOST}`,
      "-H",
      `accept-encoding: ${coding}`,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const head = new TextDecoder().decode(out.stderr).toLowerCase();
  const got = /content-encoding: *(\S+)/.exec(head)?.[1] ?? "identity";
  if (got !== coding) {
    throw new Error(`Cannot benchmark ${url} with ${coding}: the response says ${got}`);
  }
  if (coding === "gzip" && gunzipSync(out.stdout).length !== expected.length) {
    throw new Error(`Cannot benchmark ${url} with gzip: the body does not decode to the file`);
  }
  return out.stdout.length;
}

async function measure(
  name: string,
  service: Service,
  url: string,
  coding: string,
  file: Uint8Array,
  o: CompressRowsOptions,
): Promise<CompressRow> {
  const bodyBytes = await probe(url, coding, file);
  const headers = { Host: HOST, "Accept-Encoding": coding };
  await runWrk({ url, connections: o.connections, duration: 1, headers, binary: o.wrk });
  await new Promise((r) => setTimeout(r, 200));
  const before = treeCpuTicks(service.pid);
  const r = await runWrk({
    url,
    connections: o.connections,
    duration: o.duration,
    headers,
    binary: o.wrk,
  });
  const cpuMicros = ((treeCpuTicks(service.pid) - before) / o.ticksPerSecond) * 1e6;
  return {
    name,
    requestsPerSecond: r.requestsPerSecond,
    cpuMicrosPerRequest: r.requests > 0 ? cpuMicros / r.requests : NaN,
    bodyBytes,
    errors: r.non2xx + r.socketErrors,
  };
}

function table(rows: readonly CompressRow[]): string[] {
  const header = ["server, coding", "req/s", "CPU µs/req", "body bytes", "errors"];
  const cells = rows.map((r) => [
    r.name,
    r.requestsPerSecond.toFixed(0),
    r.cpuMicrosPerRequest.toFixed(1),
    String(r.bodyBytes),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join("  ");
  return [line(header), ...cells.map(line)];
}

/**
 * Starts bws (and nginx when given) on the 16 KiB file, measures each coding, stops them, and
 * returns the lines to print.
 */
export async function compressRows(o: CompressRowsOptions): Promise<string[]> {
  const dir = `${o.tmp}/compress`;
  const root = `${dir}/www`;
  await Deno.mkdir(root, { recursive: true });
  const file = await benchFile(o.repoRoot);
  await Deno.writeFile(`${root}/page.html`, file);
  const rows: CompressRow[] = [];
  const notes: string[] = [];

  const bwsPort = freePort();
  await Deno.writeTextFile(`${dir}/bws.toml`, bwsConfig(bwsPort, root));
  const bws = await startService({
    name: "bws-compress",
    command: Deno.execPath(),
    args: ["run", "-A", "--v8-flags=--expose-gc", "cli.ts", "-c", `${dir}/bws.toml`],
    cwd: o.repoRoot,
    logDir: o.tmp,
  });
  try {
    const url = `http://127.0.0.1:${bwsPort}/page.html`;
    await waitReady(bws, url, { Host: HOST }, 30_000);
    for (const coding of CODINGS) {
      rows.push(await measure(`bws ${coding}`, bws, url, coding, file, o));
    }
  } finally {
    await bws.stop();
  }

  if (o.nginx !== undefined) {
    const nginxDir = `${dir}/nginx`;
    await Deno.mkdir(nginxDir, { recursive: true });
    const port = freePort();
    await Deno.writeTextFile(
      `${nginxDir}/nginx.conf`,
      nginxConfig(nginxDir, port, root, CACHED_LEVELS.gzip),
    );
    const nginx = await startService({
      name: "nginx-gzip",
      command: o.nginx,
      args: ["-p", `${nginxDir}/`, "-c", `${nginxDir}/nginx.conf`, "-e", `${nginxDir}/error.log`],
      logDir: o.tmp,
    });
    try {
      const url = `http://127.0.0.1:${port}/page.html`;
      await waitReady(nginx, url, { Host: HOST });
      for (const coding of ["gzip", "identity"]) {
        rows.push(await measure(`nginx ${coding}`, nginx, url, coding, file, o));
      }
    } finally {
      await nginx.stop();
    }
    notes.push(
      `nginx: 1 worker, gzip on, gzip_comp_level ${CACHED_LEVELS.gzip} (bws's level for cached ` +
        "small files), compressing on every request; no brotli or zstd module installed",
    );
  } else notes.push("nginx: not installed, bws rows only");

  return [
    `static compression: GET /page.html (${FILE_SIZE} bytes of docs/behaviour.md as text/html), ` +
    `wrk -t1 -c${o.connections} -d${o.duration}s, one Accept-Encoding per row`,
    ...table(rows),
    ...notes.map((n) => `note: ${n}`),
    `note: bws compresses the file once per coding (zstd ${CACHED_LEVELS.zstd}, brotli ` +
    `${CACHED_LEVELS.br}, gzip ${CACHED_LEVELS.gzip}) and serves it from memory; access logs off ` +
    "on both",
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "10" },
      connections: { type: "string", default: "32" },
    },
  });
  const wrk = await which("wrk");
  if (wrk === undefined) {
    console.error('Cannot run benchmark "wrk": not installed (apt-get install wrk)');
    Deno.exit(1);
  }
  const tmp = await Deno.makeTempDir({ prefix: "bws-bench-compress-" });
  try {
    const lines = await compressRows({
      repoRoot: new URL("../..", import.meta.url).pathname.replace(/\/$/, ""),
      tmp,
      duration: Number(values.duration),
      connections: Number(values.connections),
      wrk,
      nginx: await which("nginx"),
      ticksPerSecond: await clockTicks(),
    });
    for (const line of lines) console.log(line);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

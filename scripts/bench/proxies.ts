/**
 * The servers the benchmark starts: the shared backend and each proxy under test.
 *
 * @module
 */

import {
  type BenchTls,
  bwsToml,
  caddyfile,
  haproxyConf,
  nginxBackendConf,
  nginxProxyConf,
  nginxSameWorkConf,
} from "./configs.ts";
import { type Service, startService } from "./process.ts";

/** Where the proxies run and what they proxy to. */
export interface BenchContext {
  /** Root of the bws checkout (holds cli.ts). */
  readonly repoRoot: string;
  /** Temp dir for configs and logs; removed at the end. */
  readonly tmp: string;
  /** Port of the shared backend (nginx or the Deno backend). */
  readonly backendPort: number;
  /** Port of the Deno backend used by the large-body routes. */
  readonly streamPort: number;
  /** Extra `deno run` flags for bws (e.g. `--cpu-prof`). @default [] */
  readonly bwsDenoFlags?: readonly string[];
  /** CPUs the proxies under test are pinned to (`taskset -c`). @default unpinned */
  readonly proxyCpus?: string;
  /** CPUs the backends and load generators are pinned to. @default unpinned */
  readonly loadCpus?: string;
  /** Port of the WebSocket echo upstream bws's `/ws` route goes to. @default backendPort */
  readonly wsPort?: number;
}

/** One proxy under test. */
export interface ProxySpec {
  /** Name printed in the table. */
  readonly name: string;
  /** Executable it needs; the proxy is skipped when missing. */
  readonly binary: string;
  /** A note printed under the table (how it was configured). */
  readonly note: string;
  start(ctx: BenchContext, port: number, binaryPath: string): Promise<Service>;
}

async function subdir(ctx: BenchContext, name: string): Promise<string> {
  const dir = `${ctx.tmp}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/** Starts nginx with `conf` rendered for its own prefix dir, pinned to `cpus`. */
export async function startNginx(
  ctx: BenchContext,
  name: string,
  binaryPath: string,
  conf: (dir: string) => string,
  cpus = ctx.proxyCpus,
): Promise<Service> {
  const dir = await subdir(ctx, name);
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf(dir));
  return startService({
    name,
    command: binaryPath,
    args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
    logDir: ctx.tmp,
    cpus,
  });
}

/** nginx answering `hello world\n` (one worker), the backend every proxy forwards to. */
export function startNginxBackend(ctx: BenchContext, binaryPath: string): Promise<Service> {
  return startNginx(
    ctx,
    "backend-nginx",
    binaryPath,
    (dir) => nginxBackendConf(dir, ctx.backendPort),
    ctx.loadCpus,
  );
}

/** The Deno backend (`scripts/bench/backend.ts`) on `port`. */
export function startDenoBackend(ctx: BenchContext, port: number): Promise<Service> {
  return startService({
    name: `backend-deno-${port}`,
    command: Deno.execPath(),
    args: ["run", "-A", "--no-config", `${ctx.repoRoot}/scripts/bench/backend.ts`, String(port)],
    logDir: ctx.tmp,
    cpus: ctx.loadCpus,
  });
}

/**
 * Starts bws (`deno run -A --v8-flags=--expose-gc cli.ts -c <file>`) with the bench config
 * (`bwsToml`), as `name` (its config, static dir and access log go to a dir of that name), over
 * TLS when `tls` is given.
 */
export async function startBws(
  ctx: BenchContext,
  port: number,
  name = "bws",
  tls?: BenchTls,
): Promise<Service> {
  const dir = await subdir(ctx, name);
  await Deno.mkdir(`${dir}/static`, { recursive: true });
  await Deno.writeTextFile(`${dir}/static/index.html`, "<h1>static</h1>\n");
  await Deno.writeTextFile(
    `${dir}/bws.toml`,
    bwsToml({
      port,
      backendPort: ctx.backendPort,
      streamPort: ctx.streamPort,
      wsPort: ctx.wsPort,
      accessLogPath: `${dir}/access.log`,
      staticDir: `${dir}/static`,
      tls,
    }),
  );
  return startService({
    name,
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc", // as the compiled binary: paces GC for streamed bodies
      ...(ctx.bwsDenoFlags ?? []),
      "cli.ts",
      "-c",
      `${dir}/bws.toml`,
    ],
    cwd: ctx.repoRoot,
    logDir: ctx.tmp,
    cpus: ctx.proxyCpus,
  });
}

/** bws itself; its config and access log live in the temp dir. */
export const BWS: ProxySpec = {
  name: "bws",
  binary: Deno.execPath(),
  note: "bws: deno run -A --v8-flags=--expose-gc cli.ts, 2 sites, 4 routes, forwarded " +
    "headers, X-Request-ID auto, access log on (file, level info), [server.timeouts] and " +
    "[server.limits] at their defaults",
  start: (ctx, port) => startBws(ctx, port),
};

/** Deno.serve + fetch, the floor bws is held to. */
export const MINIMAL_DENO: ProxySpec = {
  name: "deno-minimal",
  binary: Deno.execPath(),
  note: "deno-minimal: scripts/bench/minimal_proxy.ts (Deno.serve + fetch)",
  start(ctx, port) {
    return startService({
      name: "deno-minimal",
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        "--no-config",
        `${ctx.repoRoot}/scripts/bench/minimal_proxy.ts`,
        String(port),
        `http://127.0.0.1:${ctx.backendPort}`,
      ],
      logDir: ctx.tmp,
      cpus: ctx.proxyCpus,
    });
  },
};

function denoProgram(name: string, script: string): ProxySpec["start"] {
  return (ctx, port) =>
    startService({
      name,
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        "--no-config",
        `${ctx.repoRoot}/scripts/bench/${script}`,
        String(port),
        String(ctx.backendPort),
      ],
      logDir: ctx.tmp,
      cpus: ctx.proxyCpus,
    });
}

/** Deno.listen + own head parsing + raw Deno.connect pool: the cheapest proxy Deno can be. */
export const DENO_RAW_FLOOR: ProxySpec = {
  name: "deno-raw-floor",
  binary: Deno.execPath(),
  note: "deno-raw-floor: scripts/bench/raw_floor.ts (raw-front floor: Deno.listen with its own " +
    "tiny head parsing, kept-alive Deno.connect pool, one added header, nothing else)",
  start: denoProgram("deno-raw-floor", "raw_floor.ts"),
};

/** Deno.serve + raw Deno.connect pool: the floor of a proxy built on Deno.serve. */
export const DENO_SERVE_FLOOR: ProxySpec = {
  name: "deno-serve-floor",
  binary: Deno.execPath(),
  note: "deno-serve-floor: scripts/bench/serve_floor.ts (Deno.serve + raw Deno.connect pool, " +
    "no routing, header rewriting, timeouts or logging): the floor bws had on Deno.serve",
  start: denoProgram("deno-serve-floor", "serve_floor.ts"),
};

/** nginx as a proxy. */
export const NGINX: ProxySpec = {
  name: "nginx",
  binary: "nginx",
  note: "nginx: worker_processes 1, upstream keepalive 32, HTTP/1.1 upstream, access log off",
  start(ctx, port, binaryPath) {
    return startNginx(
      ctx,
      "nginx",
      binaryPath,
      (dir) => nginxProxyConf(dir, port, ctx.backendPort),
    );
  },
};

/** nginx configured to do what the bws bench config does per request. */
export const NGINX_SAME_WORK: ProxySpec = {
  name: "nginx-same-work",
  binary: "nginx",
  note: "nginx-same-work: as nginx, plus access log to a file (buffer=64k), X-Forwarded-For/" +
    "-Proto/-Host, Forwarded and X-Request-ID upstream, X-Request-ID and X-Content-Type-Options back",
  start(ctx, port, binaryPath) {
    return startNginx(
      ctx,
      "nginx-same-work",
      binaryPath,
      (dir) => nginxSameWorkConf(dir, port, ctx.backendPort),
    );
  },
};

/** HAProxy in HTTP mode. */
export const HAPROXY: ProxySpec = {
  name: "haproxy",
  binary: "haproxy",
  note: "haproxy: nbthread 1, mode http, http-reuse always, no logs",
  async start(ctx, port, binaryPath) {
    const dir = await subdir(ctx, "haproxy");
    await Deno.writeTextFile(`${dir}/haproxy.cfg`, haproxyConf(port, ctx.backendPort));
    return startService({
      name: "haproxy",
      command: binaryPath,
      args: ["-db", "-f", `${dir}/haproxy.cfg`],
      logDir: ctx.tmp,
      cpus: ctx.proxyCpus,
    });
  },
};

/** Caddy with reverse_proxy, limited to one OS thread of Go code. */
export const CADDY: ProxySpec = {
  name: "caddy",
  binary: "caddy",
  note: "caddy: reverse_proxy, admin off, auto_https off, GOMAXPROCS=1, no access log",
  async start(ctx, port, binaryPath) {
    const dir = await subdir(ctx, "caddy");
    await Deno.writeTextFile(`${dir}/Caddyfile`, caddyfile(port, ctx.backendPort));
    return startService({
      name: "caddy",
      command: binaryPath,
      args: ["run", "--config", `${dir}/Caddyfile`, "--adapter", "caddyfile"],
      env: {
        GOMAXPROCS: "1",
        HOME: dir,
        XDG_DATA_HOME: `${dir}/data`,
        XDG_CONFIG_HOME: `${dir}/config`,
      },
      logDir: ctx.tmp,
      cpus: ctx.proxyCpus,
    });
  },
};

/** Every proxy, in run order. */
export const ALL_PROXIES: readonly ProxySpec[] = [
  BWS,
  MINIMAL_DENO,
  DENO_RAW_FLOOR,
  DENO_SERVE_FLOOR,
  NGINX,
  NGINX_SAME_WORK,
  HAPROXY,
  CADDY,
];

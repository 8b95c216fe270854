/**
 * The benchmark's WebSocket rows: CPU per relayed message of a real bws process (its front
 * end's upgrade path, then its tunnel, on a `websocket = true` route of the bench config)
 * beside nginx, HAProxy and Caddy, a raw Deno TCP relay (one reused buffer per direction) and
 * bws's tunnel module behind a hand-paired front, all in front of one Deno echo upstream.
 *
 * The client (this process) keeps `window` messages of `size` bytes in flight on one
 * connection. Relays take turns, round after round; a relay's CPU is the run time of every
 * thread of its process tree (/proc schedstat, ns) over a run, divided by the messages echoed
 * (each counted once, though it crosses the relay twice). Medians are reported.
 *
 * @module
 */

import { caddyfile, haproxyConf, nginxWebSocketConf } from "./configs.ts";
import { freePort, type Service, type ServiceSet, startService, tail, which } from "./process.ts";
import { treeCpuNs } from "./proc_stats.ts";
import { type BenchContext, startBws, startNginx } from "./proxies.ts";
import type { WsRow } from "./report.ts";
import { runWindowedEcho, spawnPortProgram } from "./ws_client.ts";

/** Options of {@linkcode runWebSocketRows}. */
export interface WsRowsOptions {
  readonly ctx: BenchContext;
  readonly services: ServiceSet;
  /** Relay names to keep (`--only`). */
  readonly only?: readonly string[];
  /** Messages echoed per relay per round. @default 100000 */
  readonly messages?: number;
  /** @default 100 */
  readonly window?: number;
  /** Payload bytes. @default 64 */
  readonly size?: number;
  /** @default 5 */
  readonly rounds?: number;
}

/** What the WebSocket rows produced. */
export interface WsResult {
  readonly rows: WsRow[];
  readonly notes: string[];
  /** The run's parameters, for the table's title. */
  readonly title: string;
}

/** A relay ready for load. */
interface Relay {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** Upgrade request path. */
  readonly path: string;
  stop(): Promise<void>;
}

/** How a relay is started, given the echo upstream's port. */
interface RelaySpec {
  readonly name: string;
  /** Executable needed (skipped when missing). */
  readonly binary: string;
  readonly note: string;
  start(o: WsRowsOptions, echoPort: number, binaryPath: string): Promise<Relay>;
}

const TUNNEL_FRONT = new URL("../../tests/helpers/ws_tunnel_front.ts", import.meta.url).pathname;
const ECHO = new URL("./ws_echo.ts", import.meta.url).pathname;

/** A service started with startService, as a relay once a WebSocket echo goes through it. */
async function serviceRelay(
  o: WsRowsOptions,
  name: string,
  path: string,
  starting: (port: number) => Promise<Service>,
): Promise<Relay> {
  const port = freePort();
  const service = await o.services.track(starting(port));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (service.exited()) {
      await o.services.stop(service);
      throw new Error(`Cannot start "${name}": it exited\n${await tail(service.logPath)}`);
    }
    try {
      await runWindowedEcho({ port, path, count: 1, window: 1, size: 1, timeoutMs: 2000 });
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await o.services.stop(service);
        throw new Error(
          `Cannot relay a WebSocket through "${name}": ${(error as Error).message}\n${await tail(
            service.logPath,
          )}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { name, pid: service.pid, port, path, stop: () => o.services.stop(service) };
}

const RELAYS: readonly RelaySpec[] = [
  {
    name: "bws",
    binary: Deno.execPath(),
    note: "bws: the bench config's `/ws` route (websocket = true) to the echo upstream, via " +
      "cli.ts: the front end's upgrade path, then the byte tunnel",
    start: (o, echoPort) =>
      serviceRelay(
        o,
        "bws",
        "/ws",
        (port) => startBws({ ...o.ctx, wsPort: echoPort }, port, "bws-ws"),
      ),
  },
  {
    name: "nginx",
    binary: "nginx",
    note: "nginx: worker_processes 1, proxy_http_version 1.1, Upgrade/Connection passed on",
    start: (o, echoPort, nginx) =>
      serviceRelay(
        o,
        "nginx",
        "/ws",
        (port) =>
          startNginx(o.ctx, "nginx-ws", nginx, (dir) => nginxWebSocketConf(dir, port, echoPort)),
      ),
  },
  {
    name: "haproxy",
    binary: "haproxy",
    note: "haproxy: nbthread 1, mode http (upgrades become tunnels)",
    start: (o, echoPort, haproxy) =>
      serviceRelay(o, "haproxy", "/ws", async (port) => {
        const dir = `${o.ctx.tmp}/haproxy-ws`;
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(`${dir}/haproxy.cfg`, haproxyConf(port, echoPort));
        return startService({
          name: "haproxy-ws",
          command: haproxy,
          args: ["-db", "-f", `${dir}/haproxy.cfg`],
          logDir: o.ctx.tmp,
          cpus: o.ctx.proxyCpus,
        });
      }),
  },
  {
    name: "caddy",
    binary: "caddy",
    note: "caddy: reverse_proxy, GOMAXPROCS=1",
    start: (o, echoPort, caddy) =>
      serviceRelay(o, "caddy", "/ws", async (port) => {
        const dir = `${o.ctx.tmp}/caddy-ws`;
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(`${dir}/Caddyfile`, caddyfile(port, echoPort));
        return startService({
          name: "caddy-ws",
          command: caddy,
          args: ["run", "--config", `${dir}/Caddyfile`, "--adapter", "caddyfile"],
          env: {
            GOMAXPROCS: "1",
            HOME: dir,
            XDG_DATA_HOME: `${dir}/data`,
            XDG_CONFIG_HOME: `${dir}/config`,
          },
          logDir: o.ctx.tmp,
          cpus: o.ctx.proxyCpus,
        });
      }),
  },
  {
    name: "deno-raw-tunnel",
    binary: Deno.execPath(),
    note: "deno-raw-tunnel: tests/helpers/ws_tunnel_front.ts raw (hand-paired upgrade, then a " +
      "TCP copy with one reused 32 KiB buffer per direction): the floor",
    start: async (o, echoPort) => ({
      ...await spawnPortProgram(
        "deno-raw-tunnel",
        [TUNNEL_FRONT, String(echoPort), "raw", "32768"],
        o.ctx.proxyCpus,
      ),
      path: "/ws",
    }),
  },
  {
    name: "tunnel-module",
    binary: Deno.execPath(),
    note: "tunnel-module: bws's startTunnel alone behind the same hand-paired front " +
      "(tests/helpers/ws_tunnel_front.ts tunnel)",
    start: async (o, echoPort) => ({
      ...await spawnPortProgram(
        "tunnel-module",
        [TUNNEL_FRONT, String(echoPort), "tunnel", "32768"],
        o.ctx.proxyCpus,
      ),
      path: "/ws",
    }),
  },
];

/** Names of the WebSocket relays, in run order (what `--only` may name). */
export const WS_RELAY_NAMES: readonly string[] = RELAYS.map((r) => r.name);

/** Starts the echo upstream and every relay, measures them round after round, stops them. */
export async function runWebSocketRows(o: WsRowsOptions): Promise<WsResult> {
  const messages = o.messages ?? 100_000;
  const window = o.window ?? 100;
  const size = o.size ?? 64;
  const rounds = o.rounds ?? 5;
  const title = `WebSocket relay: ${messages} x ${size} B binary messages echoed per round, ` +
    `window ${window}, one connection, ${rounds} rounds, median CPU of the relay's process tree`;
  const notes: string[] = [];
  const relays: Relay[] = [];
  const echo = await spawnPortProgram("ws-echo", [ECHO], o.ctx.loadCpus);
  try {
    for (const spec of RELAYS) {
      if (o.only && !o.only.includes(spec.name)) continue;
      const binaryPath = await which(spec.binary);
      if (!binaryPath) {
        notes.push(`${spec.name}: skipped, "${spec.binary}" not installed`);
        continue;
      }
      try {
        const relay = await spec.start(o, echo.port, binaryPath);
        relays.push(relay);
        await runWindowedEcho({ port: relay.port, path: relay.path, count: 20_000, window, size });
        notes.push(spec.note);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        notes.push(`${spec.name}: FAILED: ${message.split("\n")[0]}`);
        console.error(message);
        const started = relays.at(-1);
        if (started?.name === spec.name) {
          relays.pop();
          await started.stop();
        }
      }
    }
    const micros = new Map<string, number[]>(relays.map((r) => [r.name, []]));
    const rates = new Map<string, number>();
    const failed = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      for (const relay of relays) {
        if (failed.has(relay.name)) continue;
        try {
          const before = treeCpuNs(relay.pid);
          const run = await runWindowedEcho({
            port: relay.port,
            path: relay.path,
            count: messages,
            window,
            size,
          });
          const ns = treeCpuNs(relay.pid) - before;
          micros.get(relay.name)!.push(ns / 1000 / messages);
          if (round === 0) rates.set(relay.name, messages / run.seconds);
        } catch (error) {
          failed.add(relay.name);
          notes.push(`${relay.name}: FAILED in round ${round + 1}: ${(error as Error).message}`);
        }
      }
      console.log(
        `  round ${round + 1}: ` +
          relays.map((r) => `${r.name} ${micros.get(r.name)!.at(-1)?.toFixed(2) ?? "-"}`).join(
            ", ",
          ) + " µs/msg",
      );
    }
    const rows = relays
      .filter((r) => !failed.has(r.name))
      .map((r) => ({
        name: r.name,
        microsPerMessage: micros.get(r.name)!,
        messagesPerSecond: rates.get(r.name) ?? NaN,
      }));
    return { rows, notes, title };
  } finally {
    for (const relay of relays) await relay.stop();
    await echo.stop();
  }
}

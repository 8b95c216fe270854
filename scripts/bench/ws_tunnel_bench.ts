/**
 * CPU per relayed WebSocket message through `startTunnel`, beside the floor (a raw TCP relay
 * with one reused buffer per direction, same pairing code) and nginx when installed:
 *
 * `deno run -A scripts/bench/ws_tunnel_bench.ts [--messages 200000] [--window 100] [--size 64]
 *   [--rounds 5] [--buffer 32768] [--no-nginx]`
 *
 * A Deno echo upstream runs in its own process, each relay in its own process, and this process
 * is a raw-TCP client keeping `window` messages in flight. A relay's CPU is the sum of its
 * threads' run time (/proc/<pid>/task/<tid>/schedstat, ns) over a run, divided by the messages
 * it relayed (each counted once, though it crosses the relay twice). Relays take turns, round
 * after round; medians are reported, with the ratio tunnel/floor per round (ratios measured in
 * one run are what to compare on a shared machine).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { nginxWebSocketConf } from "./configs.ts";
import { freePort } from "./process.ts";
import { treeCpuNs } from "./proc_stats.ts";
import { type PortProgram, runWindowedEcho, spawnPortProgram } from "./ws_client.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "200000" },
    window: { type: "string", default: "100" },
    size: { type: "string", default: "64" },
    rounds: { type: "string", default: "5" },
    buffer: { type: "string", default: "32768" },
    "no-nginx": { type: "boolean", default: false },
  },
});

type Relay = PortProgram;

/** nginx as a WebSocket proxy, one process (`master_process off`), or null when missing. */
async function startNginx(upstreamPort: number): Promise<Relay | null> {
  const dir = await Deno.makeTempDir({ prefix: "bws-ws-bench-" });
  const port = freePort();
  const conf = nginxWebSocketConf(dir, port, upstreamPort).replace(
    "worker_processes 1;",
    "master_process off;",
  );
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("nginx", {
      args: ["-c", `${dir}/nginx.conf`, "-p", dir, "-e", `${dir}/error.log`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch {
    return null;
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    name: "nginx",
    pid: child.pid,
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const messages = Number(flags.messages);
const window = Number(flags.window);
const size = Number(flags.size);
const rounds = Number(flags.rounds);
const echoProgram = new URL("./ws_echo.ts", import.meta.url).pathname;
const tunnelFront = new URL("../../tests/helpers/ws_tunnel_front.ts", import.meta.url).pathname;

const echo = await spawnPortProgram("echo", [echoProgram]);
const relays: Relay[] = [];
try {
  relays.push(
    await spawnPortProgram("tunnel", [tunnelFront, String(echo.port), "tunnel", flags.buffer]),
    await spawnPortProgram("floor", [tunnelFront, String(echo.port), "raw", flags.buffer]),
  );
  const nginx = flags["no-nginx"] ? null : await startNginx(echo.port);
  if (nginx) relays.push(nginx);
  const run = (port: number, count: number) => runWindowedEcho({ port, count, window, size });
  for (const relay of relays) await run(relay.port, 20_000); // warm-up
  const micros = new Map<string, number[]>(relays.map((r) => [r.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const relay of relays) {
      const before = treeCpuNs(relay.pid);
      const { seconds } = await run(relay.port, messages);
      const ns = treeCpuNs(relay.pid) - before;
      micros.get(relay.name)!.push(ns / 1000 / messages);
      if (round === 0) {
        console.log(`  ${relay.name}: ${Math.round(messages / seconds)} msg/s (first round)`);
      }
    }
  }
  console.log(
    `WebSocket relay CPU per message (${messages} x ${size} B echoed, window ${window}, ` +
      `buffer ${flags.buffer} B, ${rounds} rounds, median):`,
  );
  const floor = median(micros.get("floor")!);
  for (const relay of relays) {
    const all = micros.get(relay.name)!;
    const m = median(all);
    console.log(
      `  ${relay.name.padEnd(7)} ${m.toFixed(2)} µs/msg  (${(m / floor).toFixed(2)}x floor)  ` +
        `rounds: ${all.map((v) => v.toFixed(2)).join(" ")}`,
    );
  }
  const perRound = micros.get("tunnel")!.map((t, i) => t / micros.get("floor")![i]);
  console.log(`  tunnel/floor per round: ${perRound.map((r) => r.toFixed(2)).join(" ")}`);
  if (nginx) {
    const n = median(micros.get("nginx")!);
    console.log(`  tunnel/nginx: ${(median(micros.get("tunnel")!) / n).toFixed(2)}x`);
  }
} finally {
  for (const relay of relays) await relay.stop();
  await echo.stop();
}

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
import { openRawClient, startEchoUpstream } from "../../tests/helpers/ws_peers.ts";
import { encodeFrame } from "../../tests/helpers/ws_frames.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    echo: { type: "boolean", default: false },
    messages: { type: "string", default: "200000" },
    window: { type: "string", default: "100" },
    size: { type: "string", default: "64" },
    rounds: { type: "string", default: "5" },
    buffer: { type: "string", default: "32768" },
    "no-nginx": { type: "boolean", default: false },
  },
});

if (flags.echo) {
  const echo = startEchoUpstream();
  console.log(JSON.stringify({ port: echo.port }));
  for await (const _ of Deno.stdin.readable) { /* runs until stdin closes */ }
  await echo.close();
  Deno.exit(0);
}

interface Relay {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

/** Spawns a Deno program that prints `{"port":N}` first and runs until its stdin closes. */
async function spawnDeno(name: string, args: string[]): Promise<Relay> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Cannot start "${name}": it exited`);
    first += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(first.split("\n")[0]) as { port: number };
  return {
    name,
    pid: child.pid,
    port,
    async stop() {
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** nginx as a WebSocket proxy, one process (`master_process off`), or null when missing. */
async function startNginx(upstreamPort: number): Promise<Relay | null> {
  const dir = await Deno.makeTempDir({ prefix: "bws-ws-bench-" });
  const port = freePort();
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${dir}/${kind}_temp;`).join("\n");
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
${temp}
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}
`,
  );
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

/** Nanoseconds all threads of `pid` have run. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0],
      );
    } catch {
      // The thread ended.
    }
  }
  return total;
}

/** Sends `count` messages of `size` bytes keeping `window` unanswered; resolves when all echoes
 * are back. */
async function run(port: number, count: number, window: number, size: number): Promise<void> {
  const client = await openRawClient(port, "/bench");
  const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(size), mask: true });
  const batch = new Uint8Array(frame.length * window);
  for (let i = 0; i < window; i++) batch.set(frame, i * frame.length);
  const answer = encodeFrame({ opcode: 2, payload: new Uint8Array(size) }).length;
  const buf = new Uint8Array(256 * 1024);
  let sent = Math.min(window, count);
  await client.send(batch.subarray(0, sent * frame.length));
  let bytes = client.rest.length;
  let received = 0;
  try {
    while (received < count) {
      const n = await client.conn.read(buf);
      if (n === null) throw new Error(`Cannot finish the run: closed after ${received} echoes`);
      bytes += n;
      const now = Math.floor(bytes / answer);
      const more = Math.min(now - received, count - sent);
      received = now;
      if (more > 0) {
        sent += more;
        await client.send(batch.subarray(0, more * frame.length));
      }
    }
  } finally {
    client.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const messages = Number(flags.messages);
const window = Number(flags.window);
const size = Number(flags.size);
const rounds = Number(flags.rounds);
const self = new URL(import.meta.url).pathname;
const tunnelFront = new URL("../../tests/helpers/ws_tunnel_front.ts", import.meta.url).pathname;

const echo = await spawnDeno("echo", [self, "--echo"]);
const relays: Relay[] = [];
try {
  relays.push(
    await spawnDeno("tunnel", [tunnelFront, String(echo.port), "tunnel", flags.buffer]),
    await spawnDeno("floor", [tunnelFront, String(echo.port), "raw", flags.buffer]),
  );
  const nginx = flags["no-nginx"] ? null : await startNginx(echo.port);
  if (nginx) relays.push(nginx);
  for (const relay of relays) await run(relay.port, 20_000, window, size); // warm-up
  const micros = new Map<string, number[]>(relays.map((r) => [r.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const relay of relays) {
      const before = cpuNs(relay.pid);
      const started = performance.now();
      await run(relay.port, messages, window, size);
      const ns = cpuNs(relay.pid) - before;
      const seconds = (performance.now() - started) / 1000;
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

/**
 * Messages/s through the WebSocket relay versus straight to the echo upstream.
 *
 * `deno run -A src/websocket/relay_bench.ts [--messages N] [--window W] [--size B]`
 *
 * A child process hosts the echo upstream and the relay (so the relay's cost lands where a
 * proxy's would); this process is the client. Each run sends N messages of B bytes keeping W in
 * flight (pipelined), then N/10 strictly one at a time (ping-pong); best of 3 runs each.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startEchoUpstream, startRelayProxy } from "./testing.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    serve: { type: "boolean", default: false },
    messages: { type: "string", default: "20000" },
    window: { type: "string", default: "64" },
    size: { type: "string", default: "32" },
  },
});

if (flags.serve) {
  const echo = startEchoUpstream();
  const proxy = startRelayProxy(echo.port);
  console.log(JSON.stringify({ direct: echo.port, relay: proxy.port }));
  // Runs until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* wait */ }
  await proxy.close();
  await echo.close();
  Deno.exit(0);
}

const messages = Number(flags.messages);
const window = Number(flags.window);
const payload = "x".repeat(Number(flags.size));

async function open(port: number): Promise<WebSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/bench`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`Cannot open "ws://127.0.0.1:${port}"`));
  });
  return socket;
}

/** Sends `count` messages with at most `inFlight` unanswered; returns messages/s. */
async function run(port: number, count: number, inFlight: number): Promise<number> {
  const socket = await open(port);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let received = 0;
    socket.onmessage = () => {
      received++;
      if (received === count) resolve();
      else if (sent < count) {
        socket.send(payload);
        sent++;
      }
    };
    for (; sent < Math.min(inFlight, count); sent++) socket.send(payload);
  });
  const seconds = (performance.now() - started) / 1000;
  socket.close();
  return count / seconds;
}

async function best(port: number, count: number, inFlight: number): Promise<number> {
  let top = 0;
  for (let i = 0; i < 3; i++) top = Math.max(top, await run(port, count, inFlight));
  return top;
}

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", import.meta.filename ?? new URL(import.meta.url).pathname, "--serve"],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const writer = child.stdin.getWriter();
try {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start the bench servers: the child exited");
    first += value;
  }
  reader.releaseLock();
  const ports = JSON.parse(first.split("\n")[0]) as { direct: number; relay: number };
  await run(ports.direct, 2000, window); // warm-up
  await run(ports.relay, 2000, window);
  const pingPong = Math.max(1, Math.floor(messages / 10));
  const direct = await best(ports.direct, messages, window);
  const relayed = await best(ports.relay, messages, window);
  const directPp = await best(ports.direct, pingPong, 1);
  const relayedPp = await best(ports.relay, pingPong, 1);
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(`pipelined (${messages} x ${payload.length} B, window ${window}):`);
  console.log(`  direct ${fmt(direct)} msg/s, relay ${fmt(relayed)} msg/s`);
  console.log(`  ratio relay/direct pipelined: ${(relayed / direct).toFixed(2)}x`);
  console.log(`ping-pong (${pingPong} x ${payload.length} B, one in flight):`);
  console.log(`  direct ${fmt(directPp)} msg/s, relay ${fmt(relayedPp)} msg/s`);
  console.log(`  ratio relay/direct ping-pong: ${(relayedPp / directPp).toFixed(2)}x`);
} finally {
  await writer.close().catch(() => {});
  await child.status;
}

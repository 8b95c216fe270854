/**
 * The WebSocket benchmark's client side: a raw-TCP client that keeps a window of echoed
 * messages in flight, and a spawner for Deno relay programs that print `{"port":N}` and run
 * until their stdin closes (`tests/helpers/ws_tunnel_front.ts`).
 *
 * @module
 */

import { encodeFrame } from "../../tests/helpers/ws_frames.ts";
import { openRawClient } from "../../tests/helpers/ws_peers.ts";
import { pinned } from "./process.ts";

/** What one windowed echo run measured. */
export interface EchoRun {
  readonly messages: number;
  readonly seconds: number;
}

/** Options of {@linkcode runWindowedEcho}. */
export interface EchoRunOptions {
  readonly port: number;
  /** Request path of the upgrade. @default "/bench" */
  readonly path?: string;
  /** Messages to have echoed. */
  readonly count: number;
  /** Messages in flight at a time. */
  readonly window: number;
  /** Payload bytes per (binary) message. */
  readonly size: number;
  /** Give up after this many ms. @default 120000 */
  readonly timeoutMs?: number;
}

/**
 * Opens a WebSocket by hand on `port`, sends `count` masked binary messages of `size` bytes
 * keeping `window` unanswered, and resolves when every echo is back. Throws when the
 * handshake is refused, the connection closes early, or `timeoutMs` passes.
 */
export async function runWindowedEcho(o: EchoRunOptions): Promise<EchoRun> {
  const client = await openRawClient(o.port, o.path ?? "/bench");
  const timeoutMs = o.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    client.close();
  }, timeoutMs);
  const started = performance.now();
  const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(o.size), mask: true });
  const batch = new Uint8Array(frame.length * o.window);
  for (let i = 0; i < o.window; i++) batch.set(frame, i * frame.length);
  const answer = encodeFrame({ opcode: 2, payload: new Uint8Array(o.size) }).length;
  const buf = new Uint8Array(256 * 1024);
  let sent = Math.min(o.window, o.count);
  let bytes = client.rest.length;
  let received = 0;
  try {
    await client.send(batch.subarray(0, sent * frame.length));
    while (received < o.count) {
      const n = await client.conn.read(buf);
      if (n === null) {
        throw new Error(`Cannot finish the echo run: closed after ${received} echoes`);
      }
      bytes += n;
      const now = Math.floor(bytes / answer);
      const more = Math.min(now - received, o.count - sent);
      received = now;
      if (more > 0) {
        sent += more;
        await client.send(batch.subarray(0, more * frame.length));
      }
    }
  } catch (err) {
    if (!timedOut) throw err;
    throw new Error(`Cannot finish the echo run: ${timeoutMs} ms passed after ${received} echoes`);
  } finally {
    clearTimeout(timer);
    client.close();
  }
  return { messages: o.count, seconds: (performance.now() - started) / 1000 };
}

/** A spawned program that serves on the port it printed. */
export interface PortProgram {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** Closes its stdin (it exits), SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/**
 * Spawns `deno run -A ...args` (pinned to `cpus` when given) and reads the `{"port":N}` line it
 * prints first. The program runs until its stdin closes.
 */
export async function spawnPortProgram(
  name: string,
  args: readonly string[],
  cpus?: string,
): Promise<PortProgram> {
  const run = pinned(cpus, Deno.execPath(), ["run", "-A", ...args]);
  const child = new Deno.Command(run.command, {
    args: run.args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const guard = setTimeout(kill, 30_000);
  let first = "";
  try {
    while (!first.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Cannot start "${name}": it exited before printing its port`);
      first += value;
    }
  } catch (err) {
    kill();
    await child.status;
    throw err;
  } finally {
    clearTimeout(guard);
  }
  // Keep draining stdout so the program never blocks writing to it.
  void (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch {
      // Closed.
    }
  })();
  const { port } = JSON.parse(first.split("\n")[0]) as { port: number };
  return {
    name,
    pid: child.pid,
    port,
    async stop() {
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(kill, 5000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

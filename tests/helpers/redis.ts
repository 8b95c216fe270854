/**
 * A throwaway redis-server for tests: a free loopback port, no persistence, stopped by the test.
 * Tests that need it skip with a message where redis-server is not installed.
 *
 * @module
 */

import { freePort } from "./pebble.ts";
import { waitFor } from "./wait.ts";

/** Where Debian's `redis-server` package installs the server. */
export const REDIS_SERVER = "/usr/bin/redis-server";

/** True when redis-server is installed. */
export const hasRedis: boolean = await Deno.stat(REDIS_SERVER).then(() => true, () => false);

/** A running (or stopped, for a while) redis-server. */
export interface TestRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0` */
  readonly url: string;
  /** Kills the server (SIGKILL): clients see the connection drop; data is gone. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP: the connection stays open but nothing is answered. */
  pause(): void;
  /** SIGCONT after {@link TestRedis.pause}. */
  resume(): void;
  /** Sends one command on a fresh connection (RESP2 reply as text). */
  raw(...args: string[]): Promise<string>;
  close(): Promise<void>;
}

async function ping(port: number): Promise<boolean> {
  try {
    return (await rawCommand(port, ["PING"])).startsWith("+PONG");
  } catch {
    return false;
  }
}

/** One command on a new connection; returns the raw reply (read until a quiet 20 ms). */
async function rawCommand(port: number, args: string[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const enc = new TextEncoder();
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${enc.encode(a).length}\r\n${a}\r\n`;
    await conn.write(enc.encode(out));
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    const dec = new TextDecoder();
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"quiet">((r) => setTimeout(() => r("quiet"), text ? 20 : 2000)),
      ]);
      if (n === "quiet" || n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

/** Starts redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<TestRedis> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "bws_redis_" });
  let child: Deno.ChildProcess | null = null;
  const spawn = async () => {
    child = new Deno.Command(REDIS_SERVER, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor(`redis-server on port ${port}`, 10_000, () => ping(port), 50);
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (!c) return;
    try {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    } catch { /* already gone */ }
    await c.status;
  };
  await spawn();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    restart: spawn,
    pause: () => (child as Deno.ChildProcess | null)?.kill("SIGSTOP"),
    resume: () => (child as Deno.ChildProcess | null)?.kill("SIGCONT"),
    raw: (...args) => rawCommand(port, args),
    async close() {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

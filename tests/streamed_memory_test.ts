/**
 * Big streamed downloads through bws (a real subprocess, as the compiled binary runs: with
 * --expose-gc) keep its memory bounded: the chunks Deno's server holds are freed as they go.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { fileURLToPath } from "node:url";
import { freePort } from "./helpers/pebble.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
const CHUNK = new Uint8Array(64 * 1024).fill(7);

/** N bytes in 64 KiB chunks, with or without a Content-Length. */
function download(bytes: number, withLength: boolean): Response {
  let left = bytes;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (left <= 0) return c.close();
      const n = Math.min(left, CHUNK.length);
      c.enqueue(CHUNK.slice(0, n));
      left -= n;
    },
  }, { highWaterMark: 1 });
  const headers: Record<string, string> = withLength ? { "content-length": String(bytes) } : {};
  return new Response(body, { headers });
}

function rssBytes(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

describe("streamed downloads through bws", { skip: Deno.build.os !== "linux" }, () => {
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    return url.pathname === "/small"
      ? new Response("ok")
      : download(TOTAL, url.searchParams.has("length"));
  });
  const dir = Deno.makeTempDirSync({ prefix: "bws_streamed_memory_" });
  const port = freePort();
  Deno.writeTextFileSync(
    `${dir}/bws.toml`,
    `[logging]
level = "warn"
access_log = false

[[sites]]
name = "big"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${backend.addr.port}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", CLI, "-c", `${dir}/bws.toml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  after(async () => {
    child.kill("SIGTERM");
    await child.status;
    await backend.shutdown();
    Deno.removeSync(dir, { recursive: true });
  });

  async function ready(): Promise<void> {
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      const ok = await fetch(`http://127.0.0.1:${port}/small`).then(
        async (r) => (await r.text()) === "ok",
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("bws did not start");
  }

  for (const withLength of [true, false]) {
    const framing = withLength ? "Content-Length" : "chunked";
    it(`relays 256 MiB (${framing}) with RSS growth under 40 MB`, async () => {
      await ready();
      const base = rssBytes(child.pid);
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssBytes(child.pid));
      }, 20);
      let received = 0;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/big${withLength ? "?length" : ""}`);
        expect(res.status).toBe(200);
        for await (const chunk of res.body!) received += chunk.length;
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, rssBytes(child.pid));
      expect(received).toBe(TOTAL);
      // Without GC pacing V8 lets ~64 MB of released chunks pile up before collecting them.
      expect((peak - base) / MiB).toBeLessThan(40);
    });
  }
});

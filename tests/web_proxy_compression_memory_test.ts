/**
 * A 1 GiB compressible proxied body through a bws subprocess (as the compiled binary runs: with
 * --expose-gc) with `compression.proxy = true`: it is compressed as it streams, curl decodes it
 * to exactly 1 GiB, and bws's RSS grows by less than 64 MB while it passes.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { fileURLToPath } from "node:url";
import { freePort } from "./helpers/pebble.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const MiB = 1024 * 1024;
const TOTAL = 1024 * MiB;

/**
 * The upstream, in its own process (test files share one process whose memory others measure):
 * raw TCP, so nothing compresses on its side (Deno.serve would). It sends 1 MiB of text over and
 * over with a Content-Length; `/small` answers "ok".
 */
const BACKEND = `
const [port, total] = Deno.args.map(Number);
const words = ["alpha", "beta", "gamma", "delta", "request", "proxy", "zstd", "id", "value"];
let s = 7, text = "";
while (text.length < 1024 * 1024) {
  s = (s * 1103515245 + 12345) % 2147483648;
  text += words[s % words.length] + (s % 13 === 0 ? "\\n" : " ");
}
const CHUNK = new TextEncoder().encode(text.slice(0, 1024 * 1024));
const enc = new TextEncoder();
async function writeAll(conn, bytes) {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
async function serve(conn) {
  const buf = new Uint8Array(8192);
  let head = "";
  try {
    while (true) {
      while (!head.includes("\\r\\n\\r\\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const small = head.startsWith("GET /small ");
      head = head.slice(head.indexOf("\\r\\n\\r\\n") + 4);
      const length = small ? 2 : total;
      await writeAll(conn, enc.encode(
        "HTTP/1.1 200 OK\\r\\ncontent-type: text/plain; charset=utf-8\\r\\ncontent-length: " +
          length + "\\r\\n\\r\\n",
      ));
      if (small) { await writeAll(conn, enc.encode("ok")); continue; }
      for (let left = total; left > 0; left -= CHUNK.length) {
        await writeAll(conn, left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left));
      }
    }
  } catch {
    // the client went away
  } finally {
    try { conn.close(); } catch { /* closed */ }
  }
}
for await (const conn of Deno.listen({ hostname: "127.0.0.1", port })) serve(conn);
`;

function rssBytes(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

describe("a 1 GiB proxied body compressed by bws", { skip: Deno.build.os !== "linux" }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_proxy_compression_memory_" });
  const port = freePort();
  const backendPort = freePort();
  Deno.writeTextFileSync(`${dir}/backend.ts`, BACKEND);
  const backend = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", `${dir}/backend.ts`, `${backendPort}`, `${TOTAL}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
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

[sites.compression]
proxy = true

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${backendPort}"

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
    backend.kill("SIGTERM");
    await backend.status;
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

  it("decodes to exactly 1 GiB with bws's RSS growth under 64 MB", async () => {
    await ready();
    const base = rssBytes(child.pid);
    let peak = base;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(child.pid));
    }, 20);
    let out: Deno.CommandOutput;
    try {
      // curl and the byte count in their own processes; the head goes to stderr.
      const script = `set -o pipefail; curl -s --max-time 120 --compressed -D /dev/stderr ` +
        `-o - http://127.0.0.1:${port}/big | wc -c`;
      out = await new Deno.Command("bash", {
        args: ["-c", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(child.pid));
    const head = new TextDecoder().decode(out.stderr).toLowerCase();
    expect(head).toContain("content-encoding: zstd");
    expect(head).toContain("transfer-encoding: chunked");
    expect(out.code).toBe(0);
    expect(Number(new TextDecoder().decode(out.stdout).trim())).toBe(TOTAL);
    expect((peak - base) / MiB).toBeLessThan(64);
  });
});

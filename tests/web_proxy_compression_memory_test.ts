/**
 * A 1 GiB compressible proxied body through a bws subprocess (as the compiled binary runs: with
 * --expose-gc) with `compression.proxy = true`: it is compressed as it streams, curl decodes it
 * to exactly 1 GiB, and bws's RSS grows by less than 64 MB while it passes.
 *
 * And what a compressed stream costs while its client does not read: the compressor's state,
 * held for as long as the client keeps the connection. brotli and zstd keep a window of recent
 * input; at their default for a body of unknown size (4 MiB for brotli, 2 MiB for zstd 3) 20
 * such clients took ~170-210 MB (brotli) and ~60-110 MB (zstd) of bws; bws keeps 512 KiB windows,
 * as ngx_brotli does by default.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { RssPeak, spawnBws, spawnScript, waitServing } from "./helpers/bws_process.ts";
import { freePort } from "./helpers/pebble.ts";

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

describe("a 1 GiB proxied body compressed by bws", { skip: Deno.build.os !== "linux" }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_proxy_compression_memory_" });
  const port = freePort();
  const backendPort = freePort();
  const backend = spawnScript(dir, "backend.ts", BACKEND, [`${backendPort}`, `${TOTAL}`]);
  const bws = spawnBws(
    dir,
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
  after(async () => {
    await bws.stop();
    await backend.stop();
    Deno.removeSync(dir, { recursive: true });
  });

  it("decodes to exactly 1 GiB with bws's RSS growth under 64 MB", async () => {
    await waitServing(port, "/small");
    const rss = new RssPeak(bws.pid);
    let peak = rss.base;
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
      peak = rss.stop();
    }
    const head = new TextDecoder().decode(out.stderr).toLowerCase();
    expect(head).toContain("content-encoding: zstd");
    expect(head).toContain("transfer-encoding: chunked");
    expect(out.code).toBe(0);
    expect(Number(new TextDecoder().decode(out.stdout).trim())).toBe(TOTAL);
    expect((peak - rss.base) / MiB).toBeLessThan(64);
  });

  for (const coding of ["br", "zstd"]) {
    it(`holds under 4 MiB per ${coding} stream whose client never reads (20 of them)`, async () => {
      await waitServing(port, "/small");
      const rss = new RssPeak(bws.pid);
      const conns: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 20; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(conn);
          await conn.write(
            new TextEncoder().encode(
              `GET /big HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: ${coding}\r\n\r\n`,
            ),
          );
        }
        // Every stream starts, fills the socket buffers and waits on its client.
        await new Promise((r) => setTimeout(r, 3000));
      } finally {
        const peak = rss.stop();
        for (const c of conns) c.close();
        console.log(
          `${coding}: bws RSS +${((peak - rss.base) / MiB).toFixed(0)} MB for 20 streams`,
        );
        expect((peak - rss.base) / MiB).toBeLessThan(20 * 4);
      }
      expect(await fetch(`http://127.0.0.1:${port}/small`).then((r) => r.text())).toBe("ok");
    });
  }
});

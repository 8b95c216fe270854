/**
 * Backpressure on TLS ports: a client that sends faster than bws takes its bytes (pipelined
 * requests it never reads the answers of, an upload an upstream does not take, an HTTP/2 client
 * that never reads) must find its sends stalling once the socket buffers are full, as on a plain
 * port, instead of bws reading on and holding everything. TLS ports are served through node:tls,
 * whose paused sockets Deno 2.9.6 keeps reading from the network (700 MB in 5 s into one such
 * socket, all of it in memory); bws stops the reads at the TCP socket underneath. bws runs in its
 * own process, as the binary does.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { getOnce, RssPeak, spawnBws, waitUntil } from "./helpers/bws_process.ts";
import { freePort } from "./helpers/pebble.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";

const MiB = 1024 * 1024;
/** Client writes that make no progress for this long count as stalled. */
const STALL_MS = 2_000;
/** How long the client may push before its sends must have stalled. */
const PUSH_MS = 15_000;

describe("a TLS client that sends and never reads", { skip: Deno.build.os !== "linux" }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_tls_backpressure_" });
  const tlsPort = freePort();
  const plainPort = freePort();
  let pki: TestPki;
  let bws: ReturnType<typeof spawnBws>;

  before(async () => {
    pki = await TestPki.create();
    const leaf = await pki.issue("localhost", ["DNS:localhost", "IP:127.0.0.1"]);
    Deno.mkdirSync(`${dir}/www`);
    Deno.writeTextFileSync(`${dir}/www/index.html`, "hello\n");
    const site = (name: string, port: number, ssl: string) =>
      `[[sites]]\nname = "${name}"\nhostname = "localhost"\nport = ${port}\n` +
      `bind = "127.0.0.1"\nstatic_dir = "${dir}/www"\n${ssl}\n`;
    bws = spawnBws(
      dir,
      `[logging]\nlevel = "error"\naccess_log = false\n\n` +
        site("tls", tlsPort, sslToml(leaf)) + site("plain", plainPort, ""),
    );
    await waitUntil("bws to serve", 20_000, async () => {
      try {
        return (await getOnce(plainPort, "/index.html", 1000)).status === 200;
      } catch {
        return false;
      }
    });
  });

  after(async () => {
    await bws?.stop();
    await pki?.remove();
    Deno.removeSync(dir, { recursive: true });
  });

  it("stalls once the socket buffers are full, and bws holds no more than that", async () => {
    const rss = new RssPeak(bws.pid);
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: tlsPort,
      caCerts: [pki.caPem],
    });
    // Pipelined requests, 64 KiB of them per write; their answers are never read.
    const one = new TextEncoder().encode("GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const batch = new Uint8Array(Math.floor(64 * 1024 / one.length) * one.length);
    for (let at = 0; at < batch.length; at += one.length) batch.set(one, at);
    let sent = 0;
    let stalled = false;
    const start = Date.now();
    try {
      // Past 128 MiB it has failed already: no need to make bws hold gigabytes to show it.
      while (Date.now() - start < PUSH_MS && sent < 128 * MiB) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const n = await Promise.race([
          conn.write(batch),
          new Promise<null>((r) => timer = setTimeout(() => r(null), STALL_MS)),
        ]);
        clearTimeout(timer);
        if (n === null) {
          stalled = true;
          break;
        }
        sent += n;
      }
      const peak = rss.stop();
      console.log(
        `sent ${(sent / MiB).toFixed(1)} MiB before stalling; bws RSS ${
          (rss.base / MiB).toFixed(0)
        } -> peak ${(peak / MiB).toFixed(0)} MiB`,
      );
      expect(stalled).toBe(true);
      // Socket buffers both ways and what bws answered before its own writes stalled.
      expect(sent).toBeLessThan(64 * MiB);
      expect(peak - rss.base).toBeLessThan(64 * MiB);
      // Everyone else is served meanwhile.
      expect((await getOnce(plainPort, "/index.html")).status).toBe(200);
    } finally {
      conn.close();
    }
  });
});

/**
 * A client that goes away at any stage frees everything bws held for it (SPEC 9): against a bws
 * subprocess, on its plain port, a TLS port with one certificate and a TLS port with two (the
 * `node:tls` SNI path), clients vanish mid-head, mid-upload to a proxy route, while bws waits for
 * the upstream's answer (the read timeout is a minute away), mid-way through a proxied download
 * and mid-way through a static file. After each stage bws's descriptors are back at their
 * baseline and the upstream sees none of its connections left open.
 *
 * (The churn soak covers vanishing clients in aggregate on a plain port, WebSockets included; this
 * names the stage and the listener that leaks, and covers files and both TLS paths.)
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { freePort } from "./helpers/pebble.ts";
import {
  type BwsProcess,
  type Child,
  closeQuietly,
  fdCountOf,
  getOnce,
  sleep,
  spawnBws,
  waitServing,
  waitUntil,
} from "./helpers/bws_process.ts";
import { spawnRawUpstream, type UpstreamStats } from "./helpers/raw_upstream.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";

const MiB = 1024 * 1024;
const BIG = 8 * MiB;
/** Clients per stage and port. */
const CLIENTS = 10;
const enc = new TextEncoder();

const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
const skip = Deno.build.os !== "linux" ? "client vanish test skipped: /proc is Linux-only" : false;
if (skip) console.log(skip);
if (!skip && !hasOpenssl) console.log("client vanish test: TLS ports skipped (no openssl)");

/** How a client connects: plain TCP or TLS with the test CA. */
type Dial = () => Promise<Deno.Conn>;

/** Reads about `bytes` bytes of the answer (or until it ends). */
async function readSome(conn: Deno.Conn, bytes: number): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  let got = 0;
  while (got < bytes) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    got += n;
  }
  return got;
}

/** The stages at which a client goes away: each leaves something held if bws does not let go. */
const STAGES: Record<string, (conn: Deno.Conn) => Promise<void>> = {
  "mid-head": async (conn) => {
    await conn.write(enc.encode("GET /index.html HTTP/1.1\r\nHost: loc"));
    await sleep(50);
  },
  "mid-upload to a proxy route": async (conn) => {
    await conn.write(
      enc.encode("POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"),
    );
    await conn.write(new Uint8Array(100_000).fill(1));
    await sleep(100);
  },
  "waiting for the upstream's answer": async (conn) => {
    await conn.write(enc.encode("GET /api/hang HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    await sleep(200);
  },
  "mid-way through a proxied download": async (conn) => {
    await conn.write(enc.encode("GET /api/big HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    expect(await readSome(conn, 200_000)).toBeGreaterThan(100_000);
  },
  "mid-way through a static file": async (conn) => {
    await conn.write(enc.encode("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    expect(await readSome(conn, 200_000)).toBeGreaterThan(100_000);
  },
};

describe("clients that vanish at any stage free what bws held (SPEC 9)", { skip }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_vanish_" });
  const plain = freePort();
  const oneCert = freePort();
  const sni = freePort();
  const upstreamPort = freePort();
  let pki: TestPki | null = null;
  let upstream: Child;
  let bws: BwsProcess;
  let baseFds = 0;
  const stats = async () =>
    JSON.parse((await getOnce(upstreamPort, "/api/stats")).body) as UpstreamStats;

  const site = (name: string, port: number, extra: string) => `
[[sites]]
name = "${name}"
hostname = "${name}.test"
port = ${port}
bind = "127.0.0.1"
static_dir = "${dir}/www"
${extra}

[sites.proxy]
enabled = true

[sites.proxy.timeout]
read = 60

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${upstreamPort}"

[[sites.proxy.routes]]
path = "/api"
upstream = "b"
`;
  const tls = (f: { certFile: string; keyFile: string }) => "\n" + sslToml(f);

  before(async () => {
    Deno.mkdirSync(`${dir}/www`);
    Deno.writeTextFileSync(`${dir}/www/index.html`, "hello\n");
    Deno.writeFileSync(`${dir}/www/big.bin`, new Uint8Array(BIG).fill(3));
    upstream = spawnRawUpstream(dir, upstreamPort, BIG);
    let toml = `[server]\ngrace_period = 1\n\n[logging]\nlevel = "error"\naccess_log = false\n`;
    toml += site("plain", plain, "");
    if (hasOpenssl) {
      pki = await TestPki.create();
      const a = await pki.issue("a.test", ["DNS:a.test", "IP:127.0.0.1"]);
      const b = await pki.issue("b.test", ["DNS:b.test", "IP:127.0.0.1"]);
      toml += site("one", oneCert, tls(a)) + site("a", sni, tls(a)) + site("b", sni, tls(b));
    }
    bws = spawnBws(dir, toml);
    await waitServing(upstreamPort, "/api/x");
    await waitServing(plain, "/index.html");
    await sleep(200);
    baseFds = fdCountOf(bws.pid);
  });

  after(async () => {
    await bws?.stop();
    await upstream?.stop();
    await pki?.remove();
    Deno.removeSync(dir, { recursive: true });
  });

  const dials: [string, () => Dial | null][] = [
    ["plain", () => () => Deno.connect({ hostname: "127.0.0.1", port: plain })],
    [
      "TLS one-certificate",
      () =>
        pki &&
        (() => Deno.connectTls({ hostname: "127.0.0.1", port: oneCert, caCerts: [pki!.caPem] })),
    ],
    [
      "TLS SNI",
      () =>
        pki && (() => Deno.connectTls({ hostname: "127.0.0.1", port: sni, caCerts: [pki!.caPem] })),
    ],
  ];

  for (const [listener, dialFor] of dials) {
    it(
      `${listener} port: every stage leaves bws's fds and the upstream's connections as they were`,
      {
        skip: listener !== "plain" && !hasOpenssl ? "no openssl" : false,
      },
      async () => {
        const dial = dialFor()!;
        const leaks: string[] = [];
        for (const [stage, act] of Object.entries(STAGES)) {
          await Promise.all(Array.from({ length: CLIENTS }, async () => {
            const conn = await dial();
            try {
              await act(conn);
            } finally {
              closeQuietly(conn); // gone, with whatever was still unread
            }
          }));
          let fds = Infinity;
          let open = Infinity;
          await waitUntil(`bws to let go after "${stage}"`, 3000, async () => {
            fds = fdCountOf(bws.pid);
            open = (await stats()).open - 1; // the stats request's own connection
            return fds <= baseFds && open === 0;
          }).catch(() =>
            leaks.push(`${stage}: bws fds ${baseFds} -> ${fds}, upstream open ${open}`)
          );
        }
        expect(leaks).toEqual([]);
        // And it still serves (a static file: a proxied answer would leave a pooled socket).
        expect(await getOnce(plain, "/index.html")).toEqual({ status: 200, body: "hello\n" });
      },
    );
  }
});

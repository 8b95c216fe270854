/**
 * Running out of file descriptors never stops bws (SPEC 9): a bws subprocess started under
 * `ulimit -n 256` is flooded with 400 held TCP connections on its plain port, on a TLS port with
 * one certificate (`Deno.listenTls`) and on a TLS port with two (the `node:tls` SNI path). It
 * stays alive, logs the shortage, keeps answering on the connections it has, and serves again
 * within 2 s of the flood closing. What it cannot do meanwhile (open a file, connect upstream) is
 * answered 503, and is not blamed on the file (404) or on the upstream (502, health checks).
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
  KeepAliveClient,
  sleep,
  spawnBws,
  waitServing,
  waitUntil,
} from "./helpers/bws_process.ts";
import { spawnRawUpstream } from "./helpers/raw_upstream.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";

const FD_LIMIT = 256;
const FLOOD = 400;

const hasBash = await Deno.stat("/bin/bash").then(() => true, () => false);
const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
const skip = Deno.build.os !== "linux"
  ? "descriptor exhaustion test skipped: /proc and ulimit -n are Linux-only here"
  : hasBash
  ? false
  : "descriptor exhaustion test skipped: /bin/bash (to set ulimit -n) is missing";
if (skip) console.log(skip);
const skipTls = skip || (hasOpenssl ? false : "TLS descriptor exhaustion skipped: no openssl");
if (!skip && skipTls) console.log(skipTls);

/** Opens `n` TCP connections to `port` and holds them (those the kernel cannot queue give up
 * after 3 s). */
async function flood(port: number, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  await Promise.all(Array.from({ length: n }, async () => {
    const signal = AbortSignal.timeout(3000);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port, signal } as Deno.ConnectOptions)
      .catch(() => null);
    if (conn !== null) conns.push(conn);
  }));
  return conns;
}

/** Answers of an https GET on a new connection (pinned CA), or the error's text. */
async function httpsGet(client: Deno.HttpClient, port: number, path: string): Promise<string> {
  try {
    const res = await fetch(`https://127.0.0.1:${port}${path}`, {
      client,
      signal: AbortSignal.timeout(1500),
      headers: { connection: "close" },
    });
    return `${res.status} ${await res.text()}`;
  } catch (err) {
    return String(err);
  }
}

describe(`descriptor exhaustion: bws under ulimit -n ${FD_LIMIT} (SPEC 9)`, { skip }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_fd_exhaustion_" });
  const plain = freePort();
  const oneCert = freePort();
  const sni = freePort();
  const upstreamPort = freePort();
  let pki: TestPki | null = null;
  let upstream: Child;
  let bws: BwsProcess;
  let alive = true;

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

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${upstreamPort}"

[[sites.proxy.routes]]
path = "/api"
upstream = "b"
`;
  const tls = (file: { certFile: string; keyFile: string }) => "\n" + sslToml(file);

  before(async () => {
    Deno.mkdirSync(`${dir}/www`);
    Deno.writeTextFileSync(`${dir}/www/index.html`, "hello\n");
    upstream = spawnRawUpstream(dir, upstreamPort);
    // Held connections stay until the test closes them.
    let toml = `[server]
grace_period = 1

[server.timeouts]
header = 60
tls_handshake = 60

[logging]
level = "warn"
access_log = false
`;
    // Active checks every 0.2 s: a verdict of "down" would take 4 s of passes to undo.
    toml += site("plain", plain, "") +
      `\n[sites.proxy.health_check]\nenabled = true\npath = "/health"\ninterval = 0.2\n` +
      `timeout = 1\nretries = 2\nrise = 20\n`;
    if (!skipTls) {
      pki = await TestPki.create();
      const a = await pki.issue("a.test", ["DNS:a.test", "IP:127.0.0.1"]);
      const b = await pki.issue("b.test", ["DNS:b.test", "IP:127.0.0.1"]);
      toml += site("one", oneCert, tls(a));
      // Two certificates on one port: the node:tls SNI path.
      toml += site("a", sni, tls(a)) + site("b", sni, tls(b));
    }
    bws = spawnBws(dir, toml, { fdLimit: FD_LIMIT });
    void bws.exited.then(() => (alive = false));
    await waitServing(upstreamPort, "/api/x");
    await waitServing(plain, "/index.html").catch((err) => {
      throw new Error(`${err.message}; bws said: ${bws.output()}`);
    });
  });

  after(async () => {
    await bws?.stop();
    await upstream?.stop();
    await pki?.remove();
    Deno.removeSync(dir, { recursive: true });
  });

  const shortageLogged = (port: number) =>
    bws.output().split("\n").some((l) =>
      l.includes("out of file descriptors: accepting paused for a moment") &&
      l.includes(`:${port}`)
    );

  it(`plain port: 400 held connections; bws lives, logs it, answers 503 meanwhile and serves again within 2 s`, async () => {
    expect(Number(
      /Max open files\s+(\d+)/.exec(
        Deno.readTextFileSync(`/proc/${bws.pid}/limits`),
      )?.[1],
    )).toBe(FD_LIMIT);
    const before = fdCountOf(bws.pid);
    // A client connected before the flood (no upstream connection is pooled yet).
    const kept = await KeepAliveClient.open(plain);
    expect((await kept.request("GET", "/index.html")).status).toBe(200);
    const conns = await flood(plain, FLOOD);
    try {
      await waitUntil("the descriptor shortage in the log", 5000, () => shortageLogged(plain));
      expect(fdCountOf(bws.pid)).toBeGreaterThanOrEqual(FD_LIMIT - 2);
      expect(alive).toBe(true);
      // The connection it has is served; what needs a new descriptor is refused as a temporary
      // shortage: the file exists, the upstream is fine.
      const file = await kept.request("GET", "/index.html");
      expect(file.status).toBe(503);
      for (let i = 0; i < 4; i++) {
        const proxied = await kept.request("GET", `/api/during${i}`);
        expect(proxied.status).toBe(503);
      }
      // Long enough for several active health checks to meet the shortage.
      await sleep(1000);
      expect(alive).toBe(true);
    } finally {
      for (const c of conns) closeQuietly(c);
      kept.close();
    }
    const closed = Date.now();
    await waitUntil("a new connection to be served", 2000, async () => {
      return (await getOnce(plain, "/index.html", 500)).status === 200;
    });
    const tookMs = Date.now() - closed;
    // The upstream was never at fault: neither passive nor active health took it out.
    expect(await getOnce(plain, "/api/after")).toEqual({ status: 200, body: "ok /api/after" });
    expect(bws.output()).not.toMatch(/upstream down/);
    console.log(
      `plain: ${conns.length} connections held, fds ${before} -> ${FD_LIMIT}, served again ` +
        `${tookMs} ms after they closed`,
    );
    expect(alive).toBe(true);
    await waitUntil("bws's fds to return", 3000, () => fdCountOf(bws.pid) <= before + 2);
  });

  for (const [name, port] of [["one-certificate", oneCert], ["SNI", sni]] as const) {
    it(`TLS ${name} port: 400 held connections; bws lives, logs it and serves again within 2 s`, {
      skip: skipTls,
    }, async () => {
      const client = Deno.createHttpClient({ caCerts: [pki!.caPem] });
      try {
        expect(await httpsGet(client, port, "/index.html")).toBe("200 hello\n");
        const conns = await flood(port, FLOOD);
        try {
          await waitUntil("the descriptor shortage in the log", 5000, () => shortageLogged(port))
            .catch((err) => {
              throw new Error(
                `${err.message}; fds ${fdCountOf(bws.pid)}; log: ${bws.output().slice(-3000)}`,
              );
            });
          expect(alive).toBe(true);
          // The plain port still serves the connections it is given (none of its own are held).
          await sleep(200);
          expect(alive).toBe(true);
        } finally {
          for (const c of conns) closeQuietly(c);
        }
        const closed = Date.now();
        let last = "";
        await waitUntil(`HTTPS on the ${name} port again`, 2000, async () => {
          last = await httpsGet(client, port, "/index.html");
          return last === "200 hello\n";
        }).catch(() => {
          throw new Error(`Cannot get an HTTPS answer within 2 s of the flood closing: ${last}`);
        });
        console.log(
          `TLS ${name}: ${conns.length} held, served again ${Date.now() - closed} ms later`,
        );
        expect(alive).toBe(true);
      } finally {
        client.close();
      }
    });
  }
});

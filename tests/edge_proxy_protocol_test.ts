/**
 * PROXY protocol (SPEC 10) against a running bws: v1 and v2 headers written by the test and by
 * HAProxy (`send-proxy-v2`) set the client address that is logged, forwarded and used by the
 * access list; only trusted peers may send one (others, garbage and silence are closed); the
 * header may come in pieces, with requests right behind it, and before a TLS handshake;
 * `max_connections_per_ip` counts the clients the headers name, not the balancer.
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "../src/config/load.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { freePort } from "./helpers/pebble.ts";
import { getRequest, proxyV1, proxyV2, rawExchange } from "./helpers/raw_client.ts";

const HAPROXY = "/usr/sbin/haproxy";
const hasHaproxy = await Deno.stat(HAPROXY).then(() => true, () => false);
const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function siteToml(name: string, backend: string, extra = ""): string {
  return `
[[sites]]
name = "${name}"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
proxy_protocol = true
${extra}

[sites.access]
deny = ["203.0.113.66", "2001:db8:bad::/48"]

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
}

const SERVER = `
[server]
grace_period = 1
trusted_proxies = ["127.0.0.1"]

[server.timeouts]
header = 0.5

[server.limits]
max_connections_per_ip = 2
`;

function seenJson(body: string): Seen {
  return JSON.parse(body) as Seen;
}

function xff(seen: Seen): string | undefined {
  return seen.headers.find(([n]) => n === "x-forwarded-for")?.[1];
}

describe("PROXY protocol on a plain port", () => {
  let backend: Backend;
  let bws: TestBws;
  const client = (path: string) => bws.logger.entries.find((e) => e.path === path)?.client;

  before(async () => {
    backend = startEchoBackend("b");
    bws = await startBws(SERVER + siteToml("pp", backend.url));
  });
  after(async () => {
    await bws.close();
    await backend.close();
  });

  it("v1 TCP4 and TCP6 headers set the logged and forwarded client address", async () => {
    const r4 = await rawExchange({
      port: bws.port,
      prefix: proxyV1("TCP4", "198.51.100.7", "10.0.0.1", 40000, 80),
      data: getRequest("/v1-tcp4"),
    });
    expect(r4.responses[0]?.status).toBe(200);
    expect(xff(seenJson(r4.responses[0].body))).toBe("198.51.100.7");
    expect(client("/v1-tcp4")).toBe("198.51.100.7");

    const r6 = await rawExchange({
      port: bws.port,
      prefix: proxyV1("TCP6", "2001:db8::5", "2001:db8::1", 40000, 80),
      data: getRequest("/v1-tcp6"),
    });
    expect(r6.responses[0]?.status).toBe(200);
    expect(client("/v1-tcp6")).toBe("2001:db8::5");
  });

  it("v2 IPv4 and IPv6 headers (with a TLV) set the client address", async () => {
    const tlv = new Uint8Array([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_NOOP "abc"
    const r4 = await rawExchange({
      port: bws.port,
      prefix: proxyV2({ ip: "192.0.2.44", port: 5555 }, { ip: "10.0.0.1", port: 80 }, tlv),
      data: getRequest("/v2-tcp4"),
    });
    expect(r4.responses[0]?.status).toBe(200);
    expect(client("/v2-tcp4")).toBe("192.0.2.44");
    const r6 = await rawExchange({
      port: bws.port,
      prefix: proxyV2({ ip: "2001:db8:0:0:0:0:0:77", port: 5555 }, { ip: "2001:db8::1", port: 80 }),
      data: getRequest("/v2-tcp6"),
    });
    expect(r6.responses[0]?.status).toBe(200);
    expect(client("/v2-tcp6")).toBe("2001:db8::77");
  });

  it("LOCAL and UNKNOWN keep the socket's address", async () => {
    const local = await rawExchange({
      port: bws.port,
      prefix: proxyV2(null),
      data: getRequest("/v2-local"),
    });
    expect(local.responses[0]?.status).toBe(200);
    expect(client("/v2-local")).toBe("127.0.0.1");
    const unknown = await rawExchange({
      port: bws.port,
      prefix: proxyV1("UNKNOWN"),
      data: getRequest("/v1-unknown"),
    });
    expect(unknown.responses[0]?.status).toBe(200);
    expect(client("/v1-unknown")).toBe("127.0.0.1");
  });

  it("the access list judges the address in the header", async () => {
    const v4 = await rawExchange({
      port: bws.port,
      prefix: proxyV1("TCP4", "203.0.113.66", "10.0.0.1", 1, 80),
      data: getRequest("/denied4"),
    });
    expect(v4.responses[0]?.status).toBe(403);
    const v6 = await rawExchange({
      port: bws.port,
      prefix: proxyV2({ ip: "2001:db8:bad::1", port: 1 }, { ip: "2001:db8::1", port: 80 }),
      data: getRequest("/denied6"),
    });
    expect(v6.responses[0]?.status).toBe(403);
    const entry = bws.logger.entries.find((e) => e.path === "/denied6");
    expect(entry?.client).toBe("2001:db8:bad::1");
    expect(entry?.refused).toBe("access");
  });

  it("serves pipelined requests right behind the header, and a header sent byte by byte", async () => {
    const both = await rawExchange({
      port: bws.port,
      prefix: proxyV1("TCP4", "198.51.100.8", "10.0.0.1", 1, 80),
      data: getRequest("/pipe-1") + getRequest("/pipe-2"),
      responses: 2,
    });
    expect(both.responses.map((r) => r.status)).toEqual([200, 200]);
    expect(client("/pipe-2")).toBe("198.51.100.8");

    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const header = proxyV2({ ip: "192.0.2.99", port: 7 });
      for (const b of header) {
        await conn.write(new Uint8Array([b]));
        await sleep(2);
      }
      await conn.write(enc.encode(getRequest("/bytewise", "localhost", ["Connection: close"])));
      const reply = await new Response(conn.readable).text();
      expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      try {
        conn.close();
      } catch { /* closed by reading to the end */ }
    }
    expect(client("/bytewise")).toBe("192.0.2.99");
  });

  it("closes an untrusted peer, a connection without a header and a silent one, unanswered", async () => {
    const untrusted = await rawExchange({
      port: bws.port,
      localAddress: "127.0.0.2",
      prefix: proxyV1("TCP4", "198.51.100.9", "10.0.0.1", 1, 80),
      data: getRequest("/untrusted"),
    });
    expect(untrusted).toMatchObject({ responses: [], closed: true, leftover: "" });
    const plain = await rawExchange({ port: bws.port, data: getRequest("/no-header") });
    expect(plain).toMatchObject({ responses: [], closed: true, leftover: "" });
    const broken = await rawExchange({
      port: bws.port,
      prefix: enc.encode("PROXY TCP4 300.1.1.1 10.0.0.1 1 80\r\n"),
      data: getRequest("/broken"),
    });
    expect(broken).toMatchObject({ responses: [], closed: true, leftover: "" });
    const started = Date.now();
    const silent = await rawExchange({ port: bws.port, prefix: enc.encode("PROXY TCP4 ") });
    expect(silent).toMatchObject({ responses: [], closed: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // header timeout 0.5 s
    expect(bws.logger.entries.map((e) => e.path)).not.toContain("/untrusted");
    expect(bws.logger.lines.some((l) => l.includes("no valid PROXY protocol header"))).toBe(true);
  });

  it("counts max_connections_per_ip by the client in the header, not the balancer", async () => {
    // Three connections open at once from the balancer (127.0.0.1), for three clients: all
    // served. Three for one client: the third is closed.
    const hold = (src: string, path: string) =>
      rawExchange({
        port: bws.port,
        prefix: proxyV1("TCP4", src, "10.0.0.1", 1, 80),
        data: getRequest(path),
        responses: 2, // keeps the connection open until the timeout
        timeoutMs: 600,
      });
    const distinct = await Promise.all([
      hold("198.51.100.21", "/c1"),
      hold("198.51.100.22", "/c2"),
      hold("198.51.100.23", "/c3"),
    ]);
    expect(distinct.map((r) => r.responses[0]?.status)).toEqual([200, 200, 200]);
    const same = await Promise.all([
      hold("198.51.100.30", "/same"),
      hold("198.51.100.30", "/same"),
      hold("198.51.100.30", "/same"),
    ]);
    expect(same.map((r) => r.responses.length).sort()).toEqual([0, 1, 1]);
  });
});

describe("PROXY protocol switched on by a reload", () => {
  it("applies to connections accepted after the reload", async () => {
    const backend = startEchoBackend("b");
    const off = SERVER + siteToml("pp", backend.url).replace("proxy_protocol = true", "");
    const bws = await startBws(off);
    try {
      const before = await rawExchange({ port: bws.port, data: getRequest("/before") });
      expect(before.responses[0]?.status).toBe(200);
      const result = await bws.handle.reload(
        parseConfigText(SERVER + siteToml("pp", backend.url), { baseDir: Deno.cwd() }),
      );
      expect(result).toMatchObject({ ok: true });
      expect(bws.handle.addresses[0].port).toBe(bws.port);
      const plain = await rawExchange({ port: bws.port, data: getRequest("/after-plain") });
      expect(plain).toMatchObject({ responses: [], closed: true });
      const prefaced = await rawExchange({
        port: bws.port,
        prefix: proxyV1("TCP4", "198.51.100.50", "10.0.0.1", 1, 80),
        data: getRequest("/after"),
      });
      expect(prefaced.responses[0]?.status).toBe(200);
      expect(bws.logger.entries.find((e) => e.path === "/after")?.client).toBe("198.51.100.50");
    } finally {
      await bws.close();
      await backend.close();
    }
  });
});

describe("PROXY protocol on a TLS port", () => {
  let pki: TestPki;
  let backend: Backend;
  let bws: TestBws;

  before(async () => {
    pki = await TestPki.create();
    const leaf = await pki.issue("localhost", ["DNS:localhost"]);
    backend = startEchoBackend("b");
    bws = await startBws(
      SERVER + siteToml(
        "tls",
        backend.url,
        `
${sslToml(leaf)}redirect_http = false
`,
      ),
    );
  });
  after(async () => {
    await bws.close();
    await backend.close();
    await pki.remove();
  });

  it("reads the header before the handshake and logs the client it names", async () => {
    const ok = await rawExchange({
      port: bws.port,
      prefix: proxyV2({ ip: "198.51.100.40", port: 1234 }, { ip: "10.0.0.1", port: 443 }),
      data: getRequest("/tls-v2"),
      tls: { servername: "localhost", ca: pki.caPem },
    });
    expect(ok.responses[0]?.status).toBe(200);
    expect(xff(seenJson(ok.responses[0].body))).toBe("198.51.100.40");
    expect(bws.logger.entries.find((e) => e.path === "/tls-v2")?.client).toBe("198.51.100.40");

    const v1 = await rawExchange({
      port: bws.port,
      prefix: proxyV1("TCP6", "2001:db8:bad::9", "2001:db8::1", 1, 443),
      data: getRequest("/tls-denied"),
      tls: { servername: "localhost", ca: pki.caPem },
    });
    expect(v1.responses[0]?.status).toBe(403);
  });

  it("closes a TLS connection without a header, or from an untrusted peer", async () => {
    const none = await rawExchange({
      port: bws.port,
      data: getRequest("/tls-none"),
      tls: { servername: "localhost", ca: pki.caPem },
    });
    expect(none.responses).toEqual([]);
    const untrusted = await rawExchange({
      port: bws.port,
      localAddress: "127.0.0.3",
      prefix: proxyV1("TCP4", "198.51.100.41", "10.0.0.1", 1, 443),
      data: getRequest("/tls-untrusted"),
      tls: { servername: "localhost", ca: pki.caPem },
    });
    expect(untrusted.responses).toEqual([]);
    expect(bws.logger.entries.map((e) => e.path)).not.toContain("/tls-untrusted");
  });
});

describe("PROXY protocol from HAProxy (send-proxy-v2)", { skip: !hasHaproxy }, () => {
  let pki: TestPki;
  let backend: Backend;
  let bws: TestBws;
  let bwsTls: TestBws;
  let haproxy: Deno.ChildProcess;
  let dir: string;
  const front = freePort();
  const frontTls = freePort();

  before(async () => {
    pki = await TestPki.create();
    const leaf = await pki.issue("localhost", ["DNS:localhost"]);
    backend = startEchoBackend("b");
    bws = await startBws(SERVER + siteToml("pp", backend.url));
    bwsTls = await startBws(
      SERVER + siteToml(
        "tls",
        backend.url,
        `
${sslToml(leaf)}redirect_http = false
`,
      ),
    );
    dir = await Deno.makeTempDir({ prefix: "bws_haproxy_" });
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      `global
  maxconn 100

defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend plain
  bind 127.0.0.1:${front}
  default_backend plain

frontend tls
  bind 127.0.0.1:${frontTls}
  default_backend tls

backend plain
  server bws 127.0.0.1:${bws.port} send-proxy-v2

backend tls
  server bws 127.0.0.1:${bwsTls.port} send-proxy-v2
`,
    );
    haproxy = new Deno.Command(HAPROXY, {
      args: ["-db", "-f", `${dir}/haproxy.cfg`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 5000;
    for (const port of [front, frontTls]) {
      while (true) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(50);
        }
      }
    }
  });
  after(async () => {
    haproxy.kill("SIGKILL");
    await haproxy.status;
    await bws.close();
    await bwsTls.close();
    await backend.close();
    await pki.remove();
    await Deno.remove(dir, { recursive: true });
  });

  const curl = async (args: string[]) => {
    const out = await new Deno.Command("curl", {
      args: ["-sS", "--max-time", "5", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };

  it("logs and forwards the address the client connected to HAProxy from", async () => {
    const out = await curl(["--interface", "127.0.0.77", `http://127.0.0.1:${front}/ha`]);
    expect(out.stderr).toBe("");
    expect(xff(seenJson(out.stdout))).toBe("127.0.0.77");
    expect(bws.logger.entries.find((e) => e.path === "/ha")?.client).toBe("127.0.0.77");
  });

  it("does the same on a TLS port, over HTTP/2", async () => {
    const out = await curl([
      "--interface",
      "127.0.0.78",
      "--http2",
      "--cacert",
      pki.caFile,
      "--resolve",
      `localhost:${frontTls}:127.0.0.1`,
      "-w",
      "\n%{http_version}",
      `https://localhost:${frontTls}/ha-h2`,
    ]);
    expect(out.stderr).toBe("");
    const [body, version] = out.stdout.split("\n");
    expect(version).toBe("2");
    expect(xff(seenJson(body))).toBe("127.0.0.78");
    expect(bwsTls.logger.entries.find((e) => e.path === "/ha-h2")?.client).toBe("127.0.0.78");
  });
});

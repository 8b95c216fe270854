/**
 * End-to-end TLS through the whole server: bws started from TOML with certificate files made by
 * a private openssl CA, real curl / fetch clients pinning that CA.
 */

import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { expect } from "expect";
import { parseConfigText } from "../src/config/load.ts";
import { startServer } from "../src/server/server.ts";
import { TestPki } from "./helpers/test_pki.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { type Backend, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function curl(args: string[]): Promise<CurlResult> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "5", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** curl https://NAME:PORT/PATH with NAME resolved to 127.0.0.1 and the test CA pinned. */
function curlTls(pki: TestPki, name: string, port: number, path: string, extra: string[] = []) {
  return curl([
    "--cacert",
    pki.caFile,
    "--resolve",
    `${name}:${port}:127.0.0.1`,
    ...extra,
    `https://${name}:${port}${path}`,
  ]);
}

/** The leaf certificate the server presents for `servername` (PEM-free: its serial). */
function servedSerial(port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert.serialNumber);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", reject);
  });
}

function header(seen: Seen, name: string): string | undefined {
  return seen.headers.find(([n]) => n === name)?.[1];
}

function site(
  name: string,
  hostname: string,
  port: number,
  cert: string,
  key: string,
  backend: string,
  extraSsl = "",
) {
  return `
[[sites]]
name = "${name}"
hostname = "${hostname}"
port = ${port}
bind = "127.0.0.1"

[sites.ssl]
enabled = true
cert_file = "${cert}"
key_file = "${key}"
${extraSsl}

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
`;

describe("TLS sites end to end", () => {
  let pki: TestPki;
  let a: Backend;
  let b: Backend;
  const open: TestBws[] = [];

  before(async () => {
    pki = await TestPki.create();
    a = startEchoBackend("a");
    b = startEchoBackend("b");
  });

  after(async () => {
    for (const s of open) await s.close();
    await a.close();
    await b.close();
    await pki.remove();
  });

  it("serves HTTPS from relative cert paths, marks the request https upstream, offers h2", async () => {
    const leaf = await pki.issue("a.test", ["DNS:a.test"]);
    // Relative to the config directory (the PKI dir), not to the process' cwd.
    const rel = (f: string) => f.slice(pki.dir.length + 1);
    const bws = await startBws(
      SERVER + site("a", "a.test", 0, rel(leaf.certFile), rel(leaf.keyFile), a.url),
      pki.dir,
    );
    open.push(bws);
    expect(bws.handle.addresses[0].tls).toBe(true);
    const port = bws.port;

    const r1 = await curlTls(pki, "a.test", port, "/x?y=1", ["--http1.1"]);
    expect(r1.stderr).toBe("");
    const seen1 = JSON.parse(r1.stdout) as Seen;
    expect(seen1.path).toBe("/x?y=1");
    expect(header(seen1, "x-forwarded-proto")).toBe("https");
    expect(header(seen1, "forwarded")).toContain("proto=https");
    expect(header(seen1, "x-forwarded-host")).toBe(`a.test:${port}`);

    const r2 = await curlTls(pki, "a.test", port, "/h2", ["--http2", "-v"]);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toMatch(/ALPN: server accepted h2|ALPN, server accepted to use h2/);
    expect(r2.stderr).toMatch(/HTTP\/2 200/);
    const seen2 = JSON.parse(r2.stdout) as Seen;
    expect(seen2.path).toBe("/h2");
    expect(header(seen2, "x-forwarded-proto")).toBe("https");

    // Through fetch with the CA pinned, too.
    const client = Deno.createHttpClient({ caCerts: [pki.caPem] });
    try {
      const res = await fetch(`https://127.0.0.1:${port}/f`, { client });
      // No SNI for an IP address: the port's default site answers with its certificate, which
      // does not name 127.0.0.1, so the handshake must fail rather than serve unverified.
      await res.body?.cancel();
      throw new Error(`expected a certificate error, got ${res.status}`);
    } catch (err) {
      expect(String((err as Error).cause ?? err)).toMatch(
        /certificate|invalid peer|NotValidForName|UnknownIssuer/i,
      );
    } finally {
      client.close();
    }
  });

  it("chooses the certificate by SNI and routes h1 and h2 (:authority only) to each site", async () => {
    const la = await pki.issue("a.test", ["DNS:a.test"]);
    const lb = await pki.issue("b.test", ["DNS:b.test"]);
    const bws = await startBws(
      SERVER + site("a", "a.test", 0, la.certFile, la.keyFile, a.url) +
        site("b", "b.test", 0, lb.certFile, lb.keyFile, b.url),
    );
    open.push(bws);
    expect(bws.handle.addresses.length).toBe(1);
    const port = bws.port;
    const serialA = new X509Certificate(la.certPem).serialNumber;
    const serialB = new X509Certificate(lb.certPem).serialNumber;
    expect(await servedSerial(port, "a.test", pki.caPem)).toBe(serialA);
    expect(await servedSerial(port, "b.test", pki.caPem)).toBe(serialB);

    for (const proto of ["--http1.1", "--http2"]) {
      const ra = await curlTls(pki, "a.test", port, "/p", [proto, "-i"]);
      expect(ra.stderr).toBe("");
      expect(ra.stdout).toMatch(/x-backend: a/i);
      const rb = await curlTls(pki, "b.test", port, "/p", [proto, "-i"]);
      expect(rb.stderr).toBe("");
      expect(rb.stdout).toMatch(/x-backend: b/i);
      if (proto === "--http2") expect(rb.stdout).toMatch(/^HTTP\/2 200/);
    }
    // h2 carries no Host header: the backend still got b.test as the forwarded host.
    const last = b.seen[b.seen.length - 1];
    expect(header(last, "x-forwarded-host")).toBe(`b.test:${port}`);
  });

  it("redirects plain HTTP on http_port with 308 to https, keeping path and query", async () => {
    const leaf = await pki.issue("a.test", ["DNS:a.test"]);
    const httpsPort = freePort();
    const httpPort = freePort();
    const bws = await startBws(
      SERVER +
        site(
          "a",
          "a.test",
          httpsPort,
          leaf.certFile,
          leaf.keyFile,
          a.url,
          `
redirect_http = true
http_port = ${httpPort}
`,
        ),
    );
    open.push(bws);
    const plain = bws.handle.addresses.find((x) => !x.tls);
    expect(plain?.port).toBe(httpPort);

    const r = await curl([
      "-i",
      "--resolve",
      `a.test:${httpPort}:127.0.0.1`,
      `http://a.test:${httpPort}/some/path?q=1&r=two`,
    ]);
    expect(r.stdout).toMatch(/^HTTP\/1.1 308/);
    expect(r.stdout).toMatch(
      new RegExp(`location: https://a.test:${httpsPort}/some/path\\?q=1&r=two\\r\\n`, "i"),
    );
    // Following it lands on the TLS site.
    const f = await curl([
      "-L",
      "--cacert",
      pki.caFile,
      "--resolve",
      `a.test:${httpPort}:127.0.0.1`,
      "--resolve",
      `a.test:${httpsPort}:127.0.0.1`,
      `http://a.test:${httpPort}/follow?k=v`,
    ]);
    expect(f.stderr).toBe("");
    expect((JSON.parse(f.stdout) as Seen).path).toBe("/follow?k=v");

    // ACME challenge paths are never redirected (no auto_cert here: 404).
    const c = await rawRequest(
      httpPort,
      "GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    expect(c).toMatch(/^HTTP\/1.1 404/);
  });
});

describe("TLS start-up errors", () => {
  let pki: TestPki;
  before(async () => {
    pki = await TestPki.create();
  });
  after(async () => {
    await pki.remove();
  });

  async function expectStartFails(toml: string, message: RegExp, port: number) {
    const config = parseConfigText(toml, { baseDir: pki.dir });
    await expect(startServer(config, { logger: memoryLogger() })).rejects.toThrow(message);
    // Nothing stays listening on the port.
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    l.close();
  }

  it("rejects a missing certificate file, naming it", async () => {
    const port = freePort();
    await expectStartFails(
      SERVER + site("a", "a.test", port, "missing.crt", "missing.key", "http://127.0.0.1:1"),
      new RegExp(`Cannot load certificate "${pki.dir}/missing.crt": file not found`),
      port,
    );
  });

  it("rejects a key that does not match the certificate", async () => {
    const one = await pki.issue("a.test", ["DNS:a.test"]);
    const two = await pki.issue("a.test", ["DNS:a.test"]);
    const port = freePort();
    await expectStartFails(
      SERVER + site("a", "a.test", port, one.certFile, two.keyFile, "http://127.0.0.1:1"),
      new RegExp(`Cannot load certificate "${one.certFile}": key does not match certificate`),
      port,
    );
  });

  it("rejects an expired certificate, and a plain listener started before it is closed", async () => {
    const old = await pki.issue("a.test", ["DNS:a.test"], {
      start: "20200101000000Z",
      end: "20200201000000Z",
    });
    const port = freePort();
    const plainPort = freePort();
    await expectStartFails(
      SERVER + `
[[sites]]
name = "plain"
hostname = "p.test"
port = ${plainPort}
bind = "127.0.0.1"
static_dir = "."
` + site("a", "a.test", port, old.certFile, old.keyFile, "http://127.0.0.1:1"),
      new RegExp(`Cannot load certificate "${old.certFile}": certificate expired`),
      port,
    );
    const l = Deno.listen({ hostname: "127.0.0.1", port: plainPort });
    l.close();
  });
});

describe("TLS reload", () => {
  let pki: TestPki;
  let slow: Backend;
  let bws: TestBws | undefined;
  before(async () => {
    pki = await TestPki.create();
    slow = startEchoBackend("slow", async (req): Promise<Response> => {
      const ms = Number(new URL(req.url).searchParams.get("delay") ?? 0);
      await new Promise((r) => setTimeout(r, ms));
      return Response.json({ path: new URL(req.url).pathname + new URL(req.url).search });
    });
  });
  after(async () => {
    await bws?.close();
    await slow.close();
    await pki.remove();
  });

  it("serves a new certificate after reload without dropping an in-flight request", async () => {
    const one = await pki.issue("a.test", ["DNS:a.test"]);
    const two = await pki.issue("a.test", ["DNS:a.test"]);
    const three = await pki.issue("a.test", ["DNS:a.test"]);
    const port = freePort();
    const toml = (cert: string, key: string) =>
      SERVER + site("a", "a.test", port, cert, key, slow.url);
    bws = await startBws(toml(one.certFile, one.keyFile));
    const serial = (l: { certPem: string }) => new X509Certificate(l.certPem).serialNumber;
    expect(await servedSerial(port, "a.test", pki.caPem)).toBe(serial(one));

    // A request that is still running while the certificate changes.
    const inFlight = curlTls(pki, "a.test", port, "/slow?delay=700");
    await new Promise((r) => setTimeout(r, 200));
    const ok = await bws.handle.reload(
      parseConfigText(toml(two.certFile, two.keyFile), { baseDir: pki.dir }),
    );
    expect(ok).toEqual({ ok: true, generation: 2 });
    expect(await servedSerial(port, "a.test", pki.caPem)).toBe(serial(two));
    const done = await inFlight;
    expect(done.stderr).toBe("");
    expect((JSON.parse(done.stdout) as Seen).path).toBe("/slow?delay=700");

    // A broken path: reload fails with the file named, the running certificate stays.
    const bad = await bws.handle.reload(
      parseConfigText(toml(`${pki.dir}/nope.crt`, two.keyFile), { baseDir: pki.dir }),
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors[0].message).toContain(`"${pki.dir}/nope.crt": file not found`);
    expect(await servedSerial(port, "a.test", pki.caPem)).toBe(serial(two));
    const after = await curlTls(pki, "a.test", port, "/after");
    expect(after.stderr).toBe("");

    // A certificate renewed in place (same paths, new content) is picked up by a reload.
    await Deno.copyFile(three.certFile, two.certFile);
    await Deno.copyFile(three.keyFile, two.keyFile);
    const again = await bws.handle.reload(
      parseConfigText(toml(two.certFile, two.keyFile), { baseDir: pki.dir }),
    );
    expect(again.ok).toBe(true);
    expect(await servedSerial(port, "a.test", pki.caPem)).toBe(serial(three));
  });
});

import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import { expect } from "expect";
import { type CertificatePair, parseCertificatePair } from "../src/tls/certs.ts";
import { serveTls, type TlsListener, type TlsListenerOptions } from "../src/tls/listener.ts";
import { type TestLeaf, TestPki } from "./helpers/test_pki.ts";
import { ClientConnection } from "../src/http1/connection.ts";
import type { HttpRequest, HttpResponse } from "../src/http1/types.ts";
import { ConnectionGate } from "../src/server/connection_gate.ts";
import { Http2Bridge } from "../src/server/h2_bridge.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";

/** The leaf certificate a TLS handshake with `servername` gets, or null if it fails. */
async function servedCert(port: number, servername: string): Promise<X509Certificate | null> {
  const out = await new Deno.Command("openssl", {
    args: ["s_client", "-servername", servername, "-connect", `127.0.0.1:${port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(
    new TextDecoder().decode(out.stdout),
  );
  return pem ? new X509Certificate(pem[0]) : null;
}

/** curl with the test CA pinned and `name` resolved to 127.0.0.1. */
async function curl(pki: TestPki, name: string, port: number, path = "/", extra: string[] = []) {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-v",
      "--max-time",
      "10",
      "--cacert",
      pki.caFile,
      "--resolve",
      `${name}:${port}:127.0.0.1`,
      ...extra,
      `https://${name}:${port}${path}`,
    ], // deno-fmt-ignore
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, body: dec.decode(out.stdout), log: dec.decode(out.stderr) };
}

const pairOf = (leaf: TestLeaf) => parseCertificatePair(leaf.certPem, leaf.keyPem);

/** Echoes what the handler saw; `/slow` answers after 800 ms. */
async function handler(req: HttpRequest): Promise<HttpResponse> {
  if (req.path === "/slow") await new Promise((r) => setTimeout(r, 800));
  const seen = { url: `https://${req.host}${req.target}`, peer: req.peer.hostname, path: req.path };
  return {
    status: 200,
    headers: [["content-type", "application/json"]],
    body: new TextEncoder().encode(JSON.stringify(seen)),
  };
}

const gate = new ConnectionGate(1000, 0);
const bridge = new Http2Bridge(() => memoryLogger());
const source = {
  options: {
    handler,
    timeouts: { headerMs: 10_000, keepAliveMs: 10_000, bodyMs: 10_000, sendMs: 10_000 },
    limits: { maxHeaderSize: 32_768, maxHeaders: 100 },
  },
};

/** Serves what a TLS listener hands over the way bws does: HTTP/1.1 itself, h2 via the bridge. */
const onConnection: TlsListenerOptions["onConnection"] = (stream, peer, alpn, release) => {
  if (alpn === "h2") {
    void bridge.attach(stream, new Uint8Array(0), { peer, tls: true, handler }).finally(release);
    return;
  }
  const c = new ClientConnection(stream, peer, true, source);
  c.onClose = release;
  void c.run();
};

describe("serveTls", () => {
  let pki: TestPki;
  let a: CertificatePair;
  let a2: CertificatePair;
  let b: CertificatePair;
  let ip: CertificatePair;
  const listeners: TlsListener[] = [];
  const start = async (certificates: Map<string, CertificatePair | null>, defaultName?: string) => {
    const l = await serveTls({
      hostname: "127.0.0.1",
      port: 0,
      certificates,
      defaultName,
      onConnection,
      gate,
    });
    listeners.push(l);
    return l;
  };

  before(async () => {
    pki = await TestPki.create();
    a = pairOf(await pki.issue("a.test", ["DNS:a.test"]));
    a2 = pairOf(await pki.issue("a.test", ["DNS:a.test"]));
    b = pairOf(await pki.issue("b.test", ["DNS:b.test"]));
    ip = pairOf(await pki.issue("127.0.0.1", ["IP:127.0.0.1"]));
  });
  after(async () => {
    await Promise.all(listeners.map((l) => l.shutdown()));
    await bridge.shutdown();
    await pki.remove();
  });

  it("serves HTTPS with one certificate to fetch with the CA pinned, h2 by ALPN", async () => {
    const l = await start(new Map([["127.0.0.1", ip]]));
    const client = Deno.createHttpClient({ caCerts: [pki.caPem] });
    try {
      const res = await fetch(`https://127.0.0.1:${l.addr.port}/x`, { client });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        url: `https://127.0.0.1:${l.addr.port}/x`,
        peer: "127.0.0.1",
        path: "/x",
      });
    } finally {
      client.close();
    }
    const h2 = await curl(pki, "127.0.0.1", l.addr.port, "/", ["--http2"]);
    expect(h2.log).toContain("ALPN: server accepted h2");
    expect(h2.log).toContain("HTTP/2 200");
  });

  it("gives each name on one port its own certificate, h2 included", async () => {
    const l = await start(new Map([["a.test", a], ["b.test", b]]), "a.test");
    expect((await servedCert(l.addr.port, "a.test"))?.subject).toBe("CN=a.test");
    expect((await servedCert(l.addr.port, "b.test"))?.subject).toBe("CN=b.test");
    const ra = await curl(pki, "a.test", l.addr.port, "/p?q=1", ["--http2"]);
    expect(ra.code).toBe(0);
    expect(ra.log).toContain("ALPN: server accepted h2");
    expect(ra.log).toContain("HTTP/2 200");
    expect(JSON.parse(ra.body)).toEqual({
      url: `https://a.test:${l.addr.port}/p?q=1`,
      peer: "127.0.0.1",
      path: "/p",
    });
    const rb = await curl(pki, "b.test", l.addr.port, "/", ["--http1.1"]);
    expect(rb.code).toBe(0);
    expect(rb.log).toContain("HTTP/1.1 200");
  });

  it("answers an unknown name with the default certificate", async () => {
    const l = await start(new Map([["a.test", a], ["b.test", b]]), "b.test");
    expect((await servedCert(l.addr.port, "zz.test"))?.subject).toBe("CN=b.test");
  });

  it("fails the handshake for a name without a certificate yet; other names work", async () => {
    const l = await start(new Map([["a.test", a], ["c.test", null]]), "a.test");
    expect(await servedCert(l.addr.port, "c.test")).toBeNull();
    const rc = await curl(pki, "c.test", l.addr.port);
    expect(rc.code).not.toBe(0);
    const ra = await curl(pki, "a.test", l.addr.port);
    expect(ra.code).toBe(0);
    // once the certificate arrives, the name works without a restart
    l.setCertificate("c.test", a);
    await new Promise((r) => setTimeout(r, 50));
    expect((await servedCert(l.addr.port, "c.test"))?.subject).toBe("CN=a.test");
  });

  for (const mode of ["one certificate", "SNI"] as const) {
    it(`swaps a certificate live (${mode}): in-flight request completes`, async () => {
      const certs = new Map<string, CertificatePair | null>([["a.test", a]]);
      if (mode === "SNI") certs.set("b.test", b);
      const l = await start(certs, "a.test");
      const before = await servedCert(l.addr.port, "a.test");
      expect(before?.serialNumber).toBeDefined();
      const slow = curl(pki, "a.test", l.addr.port, "/slow");
      await new Promise((r) => setTimeout(r, 300)); // request is in flight
      l.setCertificate("a.test", a2);
      await new Promise((r) => setTimeout(r, 100));
      const fresh = await servedCert(l.addr.port, "a.test");
      expect(fresh?.subject).toBe("CN=a.test");
      expect(fresh?.serialNumber).not.toBe(before?.serialNumber);
      const done = await slow;
      expect(done.code).toBe(0);
      expect(JSON.parse(done.body).path).toBe("/slow");
      expect((await curl(pki, "a.test", l.addr.port)).code).toBe(0);
    });
  }

  it("shutdown stops accepting; a request in flight on a handed-over connection finishes", async () => {
    const l = await serveTls({
      hostname: "127.0.0.1",
      port: 0,
      certificates: new Map([["a.test", a], ["b.test", b]]),
      onConnection,
      gate,
    });
    const slow = curl(pki, "a.test", l.addr.port, "/slow");
    await new Promise((r) => setTimeout(r, 300));
    await l.shutdown();
    await l.finished;
    expect((await slow).code).toBe(0);
    expect((await curl(pki, "a.test", l.addr.port)).code).not.toBe(0);
  });
});

/**
 * TLS with `server.workers = 2`: both worker threads terminate TLS on one port (h1 and h2 by
 * ALPN), with the certificates the supervisor loads; a reload that replaces the certificate
 * file reaches both.
 */
import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { expect } from "expect";
import { TestPki } from "./helpers/test_pki.ts";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { WorkersBws } from "./helpers/workers_process.ts";

async function curl(pki: TestPki, port: number, proto: string): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "5",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{http_version}",
      proto,
      "--cacert",
      pki.caFile,
      "--resolve",
      `a.test:${port}:127.0.0.1`,
      `https://a.test:${port}/x`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

/** The serial of the certificate served for a.test on a new connection. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "a.test", ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert.serialNumber);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", reject);
  });
}

describe("TLS with server.workers = 2", () => {
  let pki: TestPki;
  let backend: Backend;
  before(async () => {
    pki = await TestPki.create();
    backend = startEchoBackend("a");
  });
  after(async () => {
    await backend.close();
    await pki.remove();
  });

  it("both workers terminate TLS (h1 and h2); a reloaded certificate reaches both", async () => {
    const first = await pki.issue("a.test", ["DNS:a.test"]);
    const certFile = `${pki.dir}/served.crt`;
    const keyFile = `${pki.dir}/served.key`;
    await Deno.copyFile(first.certFile, certFile);
    await Deno.copyFile(first.keyFile, keyFile);
    const text = `
[server]
workers = 2

[logging]
level = "warn"

[[sites]]
name = "a"
hostname = "a.test"
port = 0
bind = "127.0.0.1"

[sites.ssl]
enabled = true
cert_file = "${certFile}"
key_file = "${keyFile}"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
    const bws = await WorkersBws.start(text);
    try {
      const port = bws.port;
      const answers: string[] = [];
      for (let i = 0; i < 12; i++) answers.push(await curl(pki, port, "--http1.1"));
      for (let i = 0; i < 12; i++) answers.push(await curl(pki, port, "--http2"));
      expect(answers.slice(0, 12).every((a) => a === "200 1.1")).toBe(true);
      expect(answers.slice(12).every((a) => a === "200 2")).toBe(true);
      const workers = await bws.workers();
      expect(workers[0].requests).toBeGreaterThan(0);
      expect(workers[1].requests).toBeGreaterThan(0);

      const second = await pki.issue("a.test", ["DNS:a.test"]);
      await Deno.copyFile(second.certFile, certFile);
      await Deno.copyFile(second.keyFile, keyFile);
      expect((await bws.reload(text)).ok).toBe(true);
      const serial = new X509Certificate(second.certPem).serialNumber;
      const before = await bws.workers();
      for (let i = 0; i < 16; i++) expect(await servedSerial(port, pki.caPem)).toBe(serial);
      for (let i = 0; i < 16; i++) expect(await curl(pki, port, "--http1.1")).toBe("200 1.1");
      const after = await bws.workers();
      expect(after[0].requests).toBeGreaterThan(before[0].requests);
      expect(after[1].requests).toBeGreaterThan(before[1].requests);
    } finally {
      await bws.stop();
    }
  });
});

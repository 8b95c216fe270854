/**
 * ACME with `server.workers = 2`, against a real Pebble: the supervisor orders the certificate,
 * the CA's HTTP-01 validation is answered by whichever worker thread the kernel hands it to
 * (the worker asks the supervisor for the token), and the certificate reaches both workers'
 * TLS listeners without a restart.
 */

import { after, before, describe, it } from "node:test";
import type { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { join } from "node:path";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { WorkersBws } from "./helpers/workers_process.ts";
import { freePort, hasPebble, PEBBLE, type Pebble, startPebble } from "./helpers/pebble.ts";
import { waitFor } from "./helpers/wait.ts";

if (!hasPebble) {
  console.warn(`Skipping workers ACME test: ${PEBBLE} is not installed (apt-get install pebble)`);
}

function served(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "w.test", ca }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error("no peer certificate"));
    });
    socket.on("error", (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

describe("ACME with server.workers = 2", { skip: !hasPebble }, () => {
  let pebble: Pebble;
  let backend: Backend;
  let tmp = "";
  const httpPort = freePort();
  let savedCert: string | undefined;

  before(async () => {
    savedCert = Deno.env.get("DENO_CERT");
    pebble = await startPebble(httpPort);
    Deno.env.set("DENO_CERT", pebble.caFile);
    tmp = await Deno.makeTempDir({ prefix: "bws_workers_acme_" });
    backend = startEchoBackend("app");
  });

  after(async () => {
    if (savedCert === undefined) Deno.env.delete("DENO_CERT");
    else Deno.env.set("DENO_CERT", savedCert);
    await backend?.close();
    await pebble?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("the supervisor orders, a worker answers the validation, both serve the certificate", async () => {
    const port = freePort();
    const bws = await WorkersBws.start(
      `
[server]
workers = 2
grace_period = 2

[logging]
level = "warn"

[[sites]]
name = "w"
hostname = "w.test"
port = ${port}
bind = "127.0.0.1"

[sites.ssl]
enabled = true
auto_cert = true
http_port = ${httpPort}

[sites.ssl.acme]
enabled = true
email = "admin@w.test"
directory_url = "${pebble.directoryUrl}"
storage_dir = "${join(tmp, "store")}"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`,
    );
    try {
      const root = await pebble.root();
      let leaf: X509Certificate | undefined;
      await waitFor("the ACME certificate for w.test", 60_000, async () => {
        leaf = await served(port, root).catch(() => undefined);
        return leaf !== undefined;
      });
      expect(leaf!.subjectAltName).toContain("DNS:w.test");
      // Every new connection, on either worker, gets it.
      for (let i = 0; i < 16; i++) {
        expect((await served(port, root)).serialNumber).toBe(leaf!.serialNumber);
      }
      const workers = await bws.workers();
      expect(workers.every((w) => w.state === "running")).toBe(true);
    } finally {
      await bws.stop();
    }
  });
});

/**
 * End-to-end ACME through the whole server: bws started from TOML with an `auto_cert` site
 * obtains its certificate from a real Pebble over HTTP-01 answered on its own `http_port`,
 * serves it, reuses it after a restart, and renews it while requests are running.
 *
 * Pebble's HTTPS directory is trusted the way a user with a private ACME CA would do it:
 * `DENO_CERT` names its CA file (bws's ACME client reads it when a manager is created).
 */

import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { join } from "node:path";
import { expect } from "expect";
import { TestPki } from "./helpers/test_pki.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { freePort, hasPebble, PEBBLE, type Pebble, startPebble } from "./helpers/pebble.ts";
import { waitFor } from "./helpers/wait.ts";

if (!hasPebble) {
  console.warn(`Skipping ACME site tests: ${PEBBLE} is not installed (apt-get install pebble)`);
}

/** The leaf the server presents for `servername`, or the handshake error. */
function served(port: number, servername: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca }, () => {
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

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function acmeSite(opts: {
  name: string;
  host: string;
  port: number;
  httpPort: number;
  directoryUrl: string;
  storageDir: string;
  backend: string;
  renewBeforeDays?: number;
}): string {
  return `
[[sites]]
name = "${opts.name}"
hostname = "${opts.host}"
port = ${opts.port}
bind = "127.0.0.1"

[sites.ssl]
enabled = true
auto_cert = true
http_port = ${opts.httpPort}

[sites.ssl.acme]
enabled = true
email = "admin@${opts.host}"
directory_url = "${opts.directoryUrl}"
storage_dir = "${opts.storageDir}"
${opts.renewBeforeDays ? `renew_before_days = ${opts.renewBeforeDays}` : ""}

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${opts.backend}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
}

const SERVER = `
[server]
grace_period = 5
`;

describe("ACME sites against Pebble", { skip: !hasPebble }, () => {
  let pebble: Pebble;
  let pki: TestPki;
  let backend: Backend;
  let tmp = "";
  let pebbleRoot = "";
  let rootFile = "";
  const httpPort = freePort();
  const savedEnv: Record<string, string | undefined> = {};
  const running: TestBws[] = [];

  before(async () => {
    savedEnv.DENO_CERT = Deno.env.get("DENO_CERT");
    pebble = await startPebble(httpPort);
    Deno.env.set("DENO_CERT", pebble.caFile);
    pki = await TestPki.create();
    tmp = await Deno.makeTempDir({ prefix: "bws_acme_site_" });
    pebbleRoot = await pebble.root();
    rootFile = join(tmp, "pebble-root.pem");
    await Deno.writeTextFile(rootFile, pebbleRoot);
    backend = startEchoBackend("app", async (req): Promise<Response> => {
      const ms = Number(new URL(req.url).searchParams.get("delay") ?? 0);
      await new Promise((r) => setTimeout(r, ms));
      return new Response(`app ${new URL(req.url).pathname}`);
    });
  });

  after(async () => {
    for (const b of running) await b.close();
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
    await backend?.close();
    await pebble?.close();
    await pki?.remove();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("obtains a certificate over HTTP-01, keeps the other site up meanwhile, reuses it after a restart", async () => {
    const port = freePort();
    const storageDir = join(tmp, "store-a");
    const other = await pki.issue("b.test", ["DNS:b.test"]);
    const toml = SERVER +
      acmeSite({
        name: "a",
        host: "a.test",
        port,
        httpPort,
        directoryUrl: pebble.directoryUrl,
        storageDir,
        backend: backend.url,
      }) + `
[[sites]]
name = "b"
hostname = "b.test"
port = ${port}
bind = "127.0.0.1"
static_dir = "${tmp}"

[sites.ssl]
enabled = true
cert_file = "${other.certFile}"
key_file = "${other.keyFile}"
`;
    // Pebble cannot validate until its DNS answers: a.test stays pending for now.
    pebble.dns.hold();
    const started = Date.now();
    let bws = await startBws(toml);
    running.push(bws);
    try {
      expect(bws.handle.addresses.map((a) => [a.port, a.tls]).sort()).toEqual(
        [[port, true], [httpPort, false]].sort(),
      );
      await expect(served(port, "a.test", pebbleRoot)).rejects.toThrow();
      const b = await curl([
        "--cacert",
        pki.caFile,
        "--resolve",
        `b.test:${port}:127.0.0.1`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `https://b.test:${port}/`,
      ]);
      expect(b.stderr).toBe("");
      expect(b.stdout).toBe("404"); // the static site answered over TLS
      // The plain listener redirects a.test (redirect_http defaults to true with auto_cert).
      const r = await curl([
        "-i",
        "--resolve",
        `a.test:${httpPort}:127.0.0.1`,
        `http://a.test:${httpPort}/x?y=1`,
      ]);
      expect(r.stdout).toMatch(new RegExp(`location: https://a.test:${port}/x\\?y=1`, "i"));
    } finally {
      pebble.dns.open();
    }

    let leaf: X509Certificate | undefined;
    await waitFor("the ACME certificate for a.test", 60_000, async () => {
      leaf = await served(port, "a.test", pebbleRoot).catch(() => undefined);
      return leaf !== undefined;
    });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(leaf!.issuer).toContain("Pebble Intermediate CA");
    expect(leaf!.subjectAltName).toContain("DNS:a.test");
    const intermediate = new X509Certificate(await pebble.intermediate());
    expect(leaf!.checkIssued(intermediate)).toBe(true);
    // Pebble validated over HTTP-01 on httpPort, where only bws's plain listener runs.
    const ok = await curl([
      "--cacert",
      rootFile,
      "--resolve",
      `a.test:${port}:127.0.0.1`,
      `https://a.test:${port}/hello`,
    ]);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe("app /hello");
    // b.test still has its own certificate.
    expect((await served(port, "b.test", pki.caPem)).subject).toContain("CN=b.test");

    await bws.close();
    running.pop();
    const stored = await Deno.readTextFile(join(storageDir, "a.test", "cert.pem"));
    expect(new X509Certificate(stored).serialNumber).toBe(leaf!.serialNumber);

    // Restart on the same storage: served at once, no new order (Pebble is not even asked to
    // resolve a name for a validation).
    const queries = pebble.dns.queries;
    bws = await startBws(toml);
    running.push(bws);
    const again = await served(port, "a.test", pebbleRoot);
    expect(again.serialNumber).toBe(leaf!.serialNumber);
    await new Promise((r) => setTimeout(r, 500));
    expect(pebble.dns.queries).toBe(queries);
    expect((await served(port, "a.test", pebbleRoot)).serialNumber).toBe(leaf!.serialNumber);
    await bws.close();
    running.pop();
  });

  it("renews in the running server while a request is in flight; the request completes", async () => {
    for (const b of running.splice(0)) await b.close(); // left over by a failed test
    const port = freePort();
    const bws = await startBws(
      SERVER +
        acmeSite({
          name: "c",
          host: "c.test",
          port,
          httpPort,
          directoryUrl: pebble.directoryUrl,
          storageDir: join(tmp, "store-c"),
          backend: backend.url,
          // Pebble's certificates last years: this window makes every check renew.
          renewBeforeDays: 36500,
        }),
      undefined,
      { acmeCheckIntervalMs: 1000 },
    );
    running.push(bws);
    let first: X509Certificate | undefined;
    await waitFor("the first certificate for c.test", 30_000, async () => {
      first = await served(port, "c.test", pebbleRoot).catch(() => undefined);
      return first !== undefined;
    });
    // A slow request on a connection made with the first certificate.
    const slow = curl([
      "--cacert",
      rootFile,
      "--resolve",
      `c.test:${port}:127.0.0.1`,
      "-w",
      " %{http_code}",
      `https://c.test:${port}/slow?delay=4000`,
    ]);
    let slowDone = false;
    void slow.then(() => (slowDone = true));
    await new Promise((r) => setTimeout(r, 300));
    let renewed: X509Certificate | undefined;
    await waitFor("a renewed certificate for c.test", 15_000, async () => {
      // A connection racing a hand-over may be reset (see src/tls/README.md): try again.
      const cert = await served(port, "c.test", pebbleRoot).catch(() => undefined);
      if (cert && cert.serialNumber !== first!.serialNumber) renewed = cert;
      return renewed !== undefined;
    });
    expect(slowDone).toBe(false); // the certificate changed while the request was running
    expect(renewed!.issuer).toContain("Pebble Intermediate CA");
    const done = await slow;
    expect(done.stderr).toBe("");
    expect(done.stdout).toBe("app /slow 200");
    const seen = backend.seen.filter((s: Seen) => s.path.startsWith("/slow"));
    expect(seen.length).toBe(1);
    await bws.close();
    running.pop();
  });
});

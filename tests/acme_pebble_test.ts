/**
 * End-to-end ACME tests against a real Pebble test CA. Pebble resolves names through a tiny DNS
 * responder started here (every A query answers 127.0.0.1) and validates HTTP-01 against a
 * Deno.serve that answers from AcmeManager.challengeResponse.
 */

import { after, before, describe, it } from "node:test";
import { createSocket, type Socket } from "node:dgram";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { expect } from "expect";
import { AcmeManager, type CertificatePair } from "../src/acme/manager.ts";
import { answerChallenge, type ChallengeSource } from "../src/acme/challenge.ts";
import type { LogFields, Logger, LogLevel } from "../src/log/types.ts";

const PEBBLE = "/usr/bin/pebble";
const hasPebble = await Deno.stat(PEBBLE).then(() => true, () => false);
if (!hasPebble) {
  console.warn(`Skipping ACME Pebble tests: ${PEBBLE} is not installed (apt-get install pebble)`);
}

interface LogLine {
  level: LogLevel;
  msg: string;
  fields?: LogFields;
}

function memoryLogger(lines: LogLine[]): Logger {
  const at = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    lines.push({ level, msg, fields });
  };
  return {
    enabled: () => true,
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    access: () => {},
    reopen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** A UDP DNS responder answering A 127.0.0.1 for every name and no records for other types. */
async function startDns(): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    let end = 12;
    while (end < msg.length && msg[end] !== 0) end += msg[end] + 1;
    const qEnd = end + 5; // zero label, QTYPE, QCLASS
    if (qEnd > msg.length) return;
    const qtype = msg.readUInt16BE(end + 1);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // ID
    header.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x7800), 2); // QR RD RA, opcode
    header.writeUInt16BE(1, 4); // QDCOUNT
    header.writeUInt16BE(qtype === 1 ? 1 : 0, 6); // ANCOUNT
    const parts = [header, msg.subarray(12, qEnd)];
    if (qtype === 1) {
      // Name pointer to offset 12, TYPE A, CLASS IN, TTL 60, RDLENGTH 4, 127.0.0.1.
      parts.push(Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]));
    }
    socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, socket };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `Cannot run "${cmd} ${args.join(" ")}": ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** A CA and a 127.0.0.1 server certificate for Pebble's own HTTPS listener. */
async function makeListenerCert(dir: string): Promise<string> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=bws test ca",
  ], dir);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=localhost",
  ], dir);
  await Deno.writeTextFile(
    join(dir, "ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  return await Deno.readTextFile(join(dir, "ca.pem"));
}

async function waitFor(what: string, ms: number, ok: () => boolean | Promise<boolean>) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}

describe("AcmeManager against Pebble", { skip: !hasPebble }, () => {
  let tmp = "";
  let caPem = "";
  let directoryUrl = "";
  let dns: { port: number; socket: Socket } | undefined;
  let pebble: Deno.ChildProcess | undefined;
  let challengeServer: Deno.HttpServer | undefined;
  let managementUrl = "";
  let http: Deno.HttpClient | undefined;
  /** Where the HTTP-01 server finds key authorizations. */
  let current: ChallengeSource | undefined;
  let challengeHits = 0;
  const managers: AcmeManager[] = [];

  function newManager(
    storageDir: string,
    extra: Partial<ConstructorParameters<typeof AcmeManager>[0]> = {},
  ) {
    const m = new AcmeManager({
      directoryUrl,
      email: "admin@a.test",
      storageDir,
      renewBeforeDays: 30,
      caCerts: [caPem],
      pollMinMs: 100,
      ...extra,
    });
    managers.push(m);
    current = m;
    return m;
  }

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "bws_acme_" });
    caPem = await makeListenerCert(tmp);
    dns = await startDns();
    challengeServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const res = current ? answerChallenge(current, req) : null;
      if (res?.ok) challengeHits++;
      return res ?? new Response("not a challenge", { status: 400 });
    });
    const acmePort = freePort();
    const mgmtPort = freePort();
    await Deno.writeTextFile(
      join(tmp, "pebble.json"),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${mgmtPort}`,
          certificate: join(tmp, "cert.pem"),
          privateKey: join(tmp, "key.pem"),
          httpPort: (challengeServer.addr as Deno.NetAddr).port,
          tlsPort: freePort(),
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
        },
      }),
    );
    pebble = new Deno.Command(PEBBLE, {
      args: ["-config", join(tmp, "pebble.json"), "-dnsserver", `127.0.0.1:${dns.port}`],
      env: { PEBBLE_VA_NOSLEEP: "1", PEBBLE_AUTHZREUSE: "0", PEBBLE_WFE_NONCEREJECT: "0" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    managementUrl = `https://127.0.0.1:${mgmtPort}`;
    http = Deno.createHttpClient({ caCerts: [caPem] });
    await waitFor("Pebble's directory", 10_000, async () => {
      try {
        const res = await fetch(directoryUrl, { client: http });
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    });
  });

  after(async () => {
    for (const m of managers) await m.stop();
    if (pebble) {
      try {
        pebble.kill("SIGTERM");
      } catch { /* already gone */ }
      await pebble.status;
    }
    await challengeServer?.shutdown();
    dns?.socket.close();
    http?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("obtains a certificate over HTTP-01 and reuses the stored one without a new order", async () => {
    const storageDir = join(tmp, "store1");
    const manager = newManager(storageDir);
    const started = Date.now();
    const pair = await manager.obtain(["a.test", "www.a.test"]);
    expect(Date.now() - started).toBeLessThan(60_000);
    // Both names were really validated through our HTTP-01 server.
    expect(challengeHits).toBeGreaterThanOrEqual(2);

    const leaf = new X509Certificate(pair.certPem);
    expect(leaf.issuer).toContain("Pebble Intermediate CA");
    expect(leaf.subjectAltName).toContain("DNS:a.test");
    expect(leaf.subjectAltName).toContain("DNS:www.a.test");
    expect(pair.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(pair.names.sort()).toEqual(["a.test", "www.a.test"]);
    expect(leaf.checkPrivateKey((await import("node:crypto")).createPrivateKey(pair.keyPem)))
      .toBe(true);

    // The issuing intermediate is the one Pebble serves on its management API.
    const res = await fetch(`${managementUrl}/intermediates/0`, { client: http });
    const intermediate = new X509Certificate(await res.text());
    expect(leaf.checkIssued(intermediate)).toBe(true);
    expect(leaf.verify(intermediate.publicKey)).toBe(true);

    // A TLS client that trusts Pebble's root accepts the chain for a.test.
    const root = await (await fetch(`${managementUrl}/roots/0`, { client: http })).text();
    await Deno.writeTextFile(join(tmp, "pebble-root.pem"), root);
    const tls = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: pair.certPem, key: pair.keyPem, onListen() {} },
      () => new Response("hello over tls"),
    );
    try {
      const port = (tls.addr as Deno.NetAddr).port;
      const out = await new Deno.Command("curl", {
        args: [
          "-sS",
          "--cacert",
          join(tmp, "pebble-root.pem"),
          "--resolve",
          `www.a.test:${port}:127.0.0.1`,
          `https://www.a.test:${port}/`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      expect(new TextDecoder().decode(out.stderr)).toBe("");
      expect(new TextDecoder().decode(out.stdout)).toBe("hello over tls");
    } finally {
      await tls.shutdown();
    }

    const keyStat = await Deno.stat(join(storageDir, "a.test", "key.pem"));
    expect(keyStat.mode! & 0o777).toBe(0o600);
    expect((await Deno.stat(join(storageDir, "account.key"))).mode! & 0o777).toBe(0o600);
    expect(await Deno.readTextFile(join(storageDir, "a.test", "cert.pem"))).toBe(pair.certPem);

    // A second manager on the same storage gets it back with no order at the CA.
    const hitsBefore = challengeHits;
    const second = newManager(storageDir);
    const stored = await second.loadStored(["a.test", "www.a.test"]);
    expect(stored?.certPem).toBe(pair.certPem);
    expect(stored?.keyPem).toBe(pair.keyPem);
    expect(await second.loadStored(["a.test"])).toBeNull(); // not exactly these names
    const seen: CertificatePair[] = [];
    second.manage(["a.test", "www.a.test"], (p) => seen.push(p));
    await waitFor("the stored certificate", 5_000, () => seen.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.length).toBe(1);
    expect(seen[0].certPem).toBe(pair.certPem);
    expect(challengeHits).toBe(hitsBefore);
    await second.stop();
    await manager.stop();
  });

  it("fails the order when the HTTP-01 answer is wrong, and stores nothing", async () => {
    const storageDir = join(tmp, "store3");
    const manager = newManager(storageDir);
    current = { challengeResponse: () => "not-the-key-authorization" };
    await expect(manager.obtain(["e.test"])).rejects.toThrow();
    expect(await manager.loadStored(["e.test"])).toBeNull();
    await expect(Deno.stat(join(storageDir, "e.test", "cert.pem"))).rejects.toThrow();
    await manager.stop();
  });

  it("renews before expiry and hands over a certificate with a new serial", async () => {
    // Pebble's certificates last 5 years: a 10-year window makes every check renew.
    // Challenges are answered from files in challengeDir, as a server serving them from disk.
    const challengeDir = join(tmp, "challenges");
    const manager = newManager(join(tmp, "store2"), {
      renewBeforeDays: 3650,
      checkInterval: 1,
      challengeDir,
    });
    current = {
      challengeResponse(token) {
        try {
          return Deno.readTextFileSync(join(challengeDir, token));
        } catch {
          return null;
        }
      },
    };
    const hitsBefore = challengeHits;
    const seen: CertificatePair[] = [];
    const times: number[] = [];
    manager.manage(["b.test"], (p) => {
      seen.push(p);
      times.push(Date.now());
    });
    await waitFor("a renewed certificate", 30_000, () => seen.length >= 2);
    await manager.stop();
    expect(challengeHits).toBeGreaterThanOrEqual(hitsBefore + 2);
    expect([...Deno.readDirSync(challengeDir)]).toEqual([]); // tokens removed after use
    // Renewed on the check interval (1 s), not in a tight loop.
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(900);
    const serials = seen.map((p) => new X509Certificate(p.certPem).serialNumber);
    expect(serials[0]).not.toBe(serials[1]);
    for (const p of seen) expect(p.names).toEqual(["b.test"]);
    const count = seen.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen.length).toBe(count); // stopped: no more renewals
  });
});

describe("AcmeManager failures", () => {
  it("logs a failed attempt, retries with doubling backoff, and stop() ends the retries", async () => {
    const lines: LogLine[] = [];
    const storageDir = await Deno.makeTempDir({ prefix: "bws_acme_fail_" });
    const manager = new AcmeManager({
      directoryUrl: `https://127.0.0.1:${freePort()}/dir`,
      email: "",
      storageDir,
      renewBeforeDays: 30,
      retryMin: 0.1,
      retryMax: 0.4,
      logger: memoryLogger(lines),
    });
    try {
      manager.manage(["c.test"], () => {});
      const warns = () => lines.filter((l) => l.level === "warn");
      await waitFor("four failed attempts", 10_000, () => warns().length >= 4);
      await manager.stop();
      const w = warns();
      expect(w[0].msg).toContain(`Cannot obtain certificate for "c.test"`);
      expect(w.slice(0, 4).map((l) => l.fields?.retryInSeconds)).toEqual([0.1, 0.2, 0.4, 0.4]);
      expect(w.slice(0, 4).map((l) => l.fields?.attempt)).toEqual([1, 2, 3, 4]);
      const count = lines.length;
      await new Promise((r) => setTimeout(r, 800));
      expect(lines.length).toBe(count);
    } finally {
      await manager.stop();
      await Deno.remove(storageDir, { recursive: true });
    }
  });
});

describe("AcmeManager stop", () => {
  it("aborts a request the CA never answers and makes no further attempt", async () => {
    // A CA that accepts connections and then says nothing.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const conns: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of listener) conns.push(c);
    })();
    const storageDir = await Deno.makeTempDir({ prefix: "bws_acme_stop_" });
    const lines: LogLine[] = [];
    const manager = new AcmeManager({
      directoryUrl: `https://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/dir`,
      email: "",
      storageDir,
      renewBeforeDays: 30,
      retryMin: 0.05,
      logger: memoryLogger(lines),
    });
    try {
      manager.manage(["d.test"], () => {});
      await waitFor("a connection to the CA", 5_000, () => conns.length === 1);
      const started = Date.now();
      await manager.stop();
      expect(Date.now() - started).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 300));
      expect(conns.length).toBe(1);
      expect(lines.filter((l) => l.level === "warn")).toEqual([]);
    } finally {
      await manager.stop();
      listener.close();
      await accepting.catch(() => {});
      for (const c of conns) c.close();
      await Deno.remove(storageDir, { recursive: true });
    }
  });
});

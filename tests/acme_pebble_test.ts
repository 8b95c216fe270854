/**
 * End-to-end ACME tests against a real Pebble test CA. Pebble resolves names through a tiny DNS
 * responder started here (every A query answers 127.0.0.1) and validates HTTP-01 against a
 * Deno.serve that answers from AcmeManager.challengeResponse.
 */

import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { expect } from "expect";
import { AcmeManager, type CertificatePair } from "../src/acme/manager.ts";
import { answerChallenge, type ChallengeSource } from "./helpers/acme_challenge.ts";
import type { LogFields, Logger, LogLevel } from "../src/log/types.ts";
import { freePort, hasPebble, PEBBLE, type Pebble, startPebble } from "./helpers/pebble.ts";
import { waitFor } from "./helpers/wait.ts";

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

describe("AcmeManager against Pebble", { skip: !hasPebble }, () => {
  let tmp = "";
  let caPem = "";
  let directoryUrl = "";
  let pebble: Pebble | undefined;
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
    challengeServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const res = current ? answerChallenge(current, req) : null;
      if (res?.ok) challengeHits++;
      return res ?? new Response("not a challenge", { status: 400 });
    });
    pebble = await startPebble((challengeServer.addr as Deno.NetAddr).port);
    caPem = pebble.caPem;
    directoryUrl = pebble.directoryUrl;
    managementUrl = pebble.managementUrl;
    http = pebble.http;
  });

  after(async () => {
    for (const m of managers) await m.stop();
    await pebble?.close();
    await challengeServer?.shutdown();
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
      checkIntervalMs: 1000,
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
      retryMinMs: 100,
      retryMaxMs: 400,
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
      retryMinMs: 50,
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

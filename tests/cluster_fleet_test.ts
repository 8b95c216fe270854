/**
 * A fleet (SPEC 12, `[cluster]`): two bws instances on different ports sharing one real
 * redis-server and one Pebble. A certificate is ordered once and served by both; the CA's HTTP-01
 * validation lands on the instance that did not order and succeeds; a lock holder killed
 * mid-order is replaced once its lock expires; Redis killed while both serve fails no request,
 * and when it returns the due renewal happens once; a shared rate limit counts both instances.
 */

import { after, before, describe, it } from "node:test";
import type { X509Certificate } from "node:crypto";
import https from "node:https";
import tls from "node:tls";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "expect";
import type { StartOptions } from "../mod.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { freePort, hasPebble, PEBBLE, type Pebble, startPebble } from "./helpers/pebble.ts";
import { waitFor } from "./helpers/wait.ts";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "./helpers/redis.ts";

const START_BWS = fileURLToPath(new URL("./helpers/start_bws.ts", import.meta.url));
/** Heartbeats every 200 ms, so the fleet list fills quickly. */
const FAST_HEARTBEAT = { clusterTuning: { heartbeatMs: 200 } };

if (!hasPebble) console.warn(`Skipping fleet tests: ${PEBBLE} is not installed`);
if (!hasRedis) console.warn(`Skipping fleet tests: ${REDIS_SERVER} is not installed`);

/** The leaf certificate served for `servername`, or the handshake error. */
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

/** GET over HTTPS to 127.0.0.1 with SNI and Host `host`; the status, or the error. */
function httpsGet(port: number, host: string, path: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, path, servername: host, ca, headers: { host }, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

interface SiteOptions {
  instance: string;
  prefix: string;
  redisUrl: string;
  host: string;
  tlsPort: number;
  httpPort: number;
  directoryUrl: string;
  storageDir: string;
  www: string;
  renewBeforeDays?: number;
}

function fleetToml(o: SiteOptions): string {
  return `
[server]
grace_period = 1

[management]
enabled = true
port = 0

[logging]
access_log = true

[cluster]
redis_url = "${o.redisUrl}"
key_prefix = "${o.prefix}"
instance_name = "${o.instance}"

[[sites]]
name = "main"
hostname = "${o.host}"
port = ${o.tlsPort}
bind = "127.0.0.1"
static_dir = "${o.www}"

[sites.rate_limit]
rate = 10000
burst = 10000

[sites.ssl]
enabled = true
auto_cert = true
http_port = ${o.httpPort}

[sites.ssl.acme]
enabled = true
directory_url = "${o.directoryUrl}"
storage_dir = "${o.storageDir}"
${o.renewBeforeDays ? `renew_before_days = ${o.renewBeforeDays}` : ""}
`;
}

describe("A fleet of two bws sharing Redis and Pebble", { skip: !hasPebble || !hasRedis }, () => {
  let redis: TestRedis;
  let pebble: Pebble;
  let tmp = "";
  let www = "";
  let root = "";
  /** Pebble validates HTTP-01 here: only instance B's plain listener ever runs on it. */
  const validationPort = freePort();
  const running: TestBws[] = [];
  const savedCert = Deno.env.get("DENO_CERT");
  let n = 0;

  const site = (instance: string, tlsPort: number, httpPort: number, extra: Partial<SiteOptions>) =>
    fleetToml({
      instance,
      prefix: `t${n}:`,
      redisUrl: redis.url,
      host: `fleet${n}.test`,
      tlsPort,
      httpPort,
      directoryUrl: pebble.directoryUrl,
      storageDir: join(tmp, `${instance}-${n}`),
      www,
      ...extra,
    });

  const start = async (toml: string, options: Omit<StartOptions, "logger"> = {}) => {
    const bws = await startBws(toml, undefined, options);
    running.push(bws);
    return bws;
  };

  const closeAll = async () => {
    for (const b of running.splice(0)) await b.close();
  };

  before(async () => {
    redis = await startRedis();
    pebble = await startPebble(validationPort);
    Deno.env.set("DENO_CERT", pebble.caFile);
    tmp = await Deno.makeTempDir({ prefix: "bws_fleet_" });
    www = join(tmp, "www");
    await Deno.mkdir(www);
    await Deno.writeTextFile(join(www, "index.html"), "fleet\n");
    root = await pebble.root();
  });

  after(async () => {
    await closeAll();
    if (savedCert === undefined) Deno.env.delete("DENO_CERT");
    else Deno.env.set("DENO_CERT", savedCert);
    await pebble?.close();
    await redis?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("orders once; the instance that did not order answers the CA's validation; both serve it and list each other", async () => {
    await closeAll(); // left over by a failed test
    n++;
    const host = `fleet${n}.test`;
    const [portA, portB] = [freePort(), freePort()];
    const orders = await pebble.orders();
    // Instance A orders while Pebble cannot resolve the name yet; B starts meanwhile.
    pebble.dns.hold();
    const queries = pebble.dns.queries;
    let a: TestBws;
    let b: TestBws;
    try {
      a = await start(site("edge-a", portA, freePort(), {}), FAST_HEARTBEAT);
      await waitFor("A's order to reach validation", 20_000, () => pebble.dns.queries > queries);
      b = await start(site("edge-b", portB, validationPort, {}), FAST_HEARTBEAT);
      await waitFor(
        "B to wait for A",
        10_000,
        () => b.logger.lines.some((l) => l.includes("Waiting for the instance that is obtaining")),
      );
    } finally {
      pebble.dns.open();
    }
    let leafA: X509Certificate | undefined;
    let leafB: X509Certificate | undefined;
    await waitFor("both instances to serve the certificate", 30_000, async () => {
      leafA = await served(portA, host, root).catch(() => undefined);
      leafB = await served(portB, host, root).catch(() => undefined);
      return leafA !== undefined && leafB !== undefined;
    });
    expect(leafA!.serialNumber).toBe(leafB!.serialNumber);
    expect(leafA!.subjectAltName).toContain(`DNS:${host}`);
    expect(await pebble.orders()).toBe(orders + 1);
    expect(a!.logger.lines.filter((l) => l.includes("Obtained certificate")).length).toBe(1);
    expect(b!.logger.lines.some((l) => l.includes("Obtained certificate"))).toBe(false);
    expect(b!.logger.lines.some((l) => l.includes("another instance stored"))).toBe(true);
    // Pebble's validation request was answered by B, from the answer A put in Redis.
    const challenges = b!.logger.entries.filter((e) =>
      e.path.startsWith("/.well-known/acme-challenge/")
    );
    expect(challenges.length).toBeGreaterThanOrEqual(1);
    expect(challenges.every((e) => e.status === 200)).toBe(true);
    expect(await httpsGet(portB, host, "/", root)).toBe(200);

    // Both list the fleet in /api/status.
    for (const [bws, self] of [[a!, "edge-a"], [b!, "edge-b"]] as const) {
      const url = `http://127.0.0.1:${bws.handle.managementAddress!.port}/api/status`;
      let instances: { name: string; state: string; self: boolean; version: string }[] = [];
      await waitFor(`${self} to list both instances`, 5000, async () => {
        instances = (await (await fetch(url)).json()).instances;
        return instances.length === 2;
      });
      expect(instances.map((i) => [i.name, i.self, i.state])).toEqual([
        [self, true, "up"],
        [self === "edge-a" ? "edge-b" : "edge-a", false, "up"],
      ]);
      expect(instances[0].version).toMatch(/^\d+\.\d+\.\d+/);
    }
    await closeAll();
  });

  it("keeps serving with Redis killed (0 failed requests), and renews once when Redis is back", async () => {
    await closeAll(); // left over by a failed test
    n++;
    const host = `fleet${n}.test`;
    const [portA, portB] = [freePort(), freePort()];
    const base = await pebble.orders();
    // Every check finds the certificate due (Pebble's certificates last years), but never within
    // a check interval (3 s) of the last one: one renewal per interval for the whole fleet.
    const options = { acmeCheckIntervalMs: 3000 };
    const [a, b] = await Promise.all([
      start(site("edge-a", portA, freePort(), { renewBeforeDays: 36500 }), options),
      start(site("edge-b", portB, validationPort, { renewBeforeDays: 36500 }), options),
    ]);
    let first = "";
    await waitFor("both instances to serve the first certificate", 30_000, async () => {
      const ca = await served(portA, host, root).catch(() => undefined);
      const cb = await served(portB, host, root).catch(() => undefined);
      first = ca?.serialNumber === cb?.serialNumber ? ca?.serialNumber ?? "" : "";
      return first !== "";
    });
    expect(await pebble.orders()).toBe(base + 1);

    let ok = 0;
    const failures: string[] = [];
    let loop = true;
    const traffic = (async () => {
      for (let i = 0; loop && i < 5000; i++) {
        const port = i % 2 ? portA : portB;
        try {
          const status = await httpsGet(port, host, "/", root);
          if (status === 200) ok++;
          else failures.push(`status ${status}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 200));
      await redis.kill();
      // Past the point where the renewal is due: nobody orders without the lock.
      await new Promise((r) => setTimeout(r, 3500));
      expect(await pebble.orders()).toBe(base + 1);
      expect((await served(portA, host, root)).serialNumber).toBe(first);
      await redis.restart(); // empty: it kept nothing
      let renewed = "";
      await waitFor("both instances to serve the renewed certificate", 20_000, async () => {
        const ca = await served(portA, host, root).catch(() => undefined);
        const cb = await served(portB, host, root).catch(() => undefined);
        const same = ca && cb && ca.serialNumber === cb.serialNumber;
        renewed = same && ca.serialNumber !== first ? ca.serialNumber : "";
        return renewed !== "";
      });
      expect(await pebble.orders()).toBe(base + 2);
    } finally {
      loop = false;
      await traffic;
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    for (const bws of [a, b]) {
      expect(bws.logger.lines.some((l) => l.includes("Cannot reach Redis"))).toBe(true);
      expect(bws.logger.lines.some((l) => l.includes("Redis is reachable again"))).toBe(true);
    }
    await closeAll();
  });

  it("lets the other instance order once the lock of a holder killed mid-order expires", async () => {
    await closeAll(); // left over by a failed test
    n++;
    const host = `fleet${n}.test`;
    const [portA, portB] = [freePort(), freePort()];
    const base = await pebble.orders();
    const lockTtl = 2;
    const file = join(tmp, `holder-${n}.toml`);
    await Deno.writeTextFile(file, site("edge-a", portA, freePort(), {}));
    pebble.dns.hold();
    const queries = pebble.dns.queries;
    let holder: Deno.ChildProcess | null = null;
    let b: TestBws | undefined;
    let killedAt = 0;
    let ttlLeft = 0;
    try {
      holder = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          START_BWS,
          file,
          JSON.stringify({ clusterTuning: { lockTtlMs: lockTtl * 1000 } }),
        ],
        env: { DENO_CERT: pebble.caFile },
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitFor(
        "the holder's order to reach validation",
        30_000,
        () => pebble.dns.queries > queries,
      );
      const locks = await redis.raw("KEYS", `t${n}:acme:*:lock:*`);
      expect(locks).toContain(host);
      b = await start(site("edge-b", portB, validationPort, {}), {
        clusterTuning: { lockTtlMs: lockTtl * 1000 },
        acmeCheckIntervalMs: 1000,
      });
      await waitFor(
        "B to wait for the holder",
        10_000,
        () => b!.logger.lines.some((l) => l.includes("Waiting for the instance that is obtaining")),
      );
      const lockKey = locks.split("\r\n").find((l) => l.includes(":lock:"))!;
      ttlLeft = Number((await redis.raw("PTTL", lockKey)).replace(/^:/, ""));
      expect(ttlLeft).toBeGreaterThan(0);
      holder.kill("SIGKILL");
      killedAt = Date.now();
      await holder.status;
      holder = null;
    } finally {
      holder?.kill("SIGKILL");
      await holder?.status;
      pebble.dns.open();
    }
    let orderedAt = 0;
    await waitFor("B's order", 20_000, async () => {
      if ((await pebble.orders()) < base + 2) return false;
      orderedAt = Date.now();
      return true;
    });
    // Not before the dead holder's lock ran out.
    expect(orderedAt - killedAt).toBeGreaterThanOrEqual(ttlLeft - 100);
    let leaf: X509Certificate | undefined;
    await waitFor("B to serve its certificate", 20_000, async () => {
      leaf = await served(portB, host, root).catch(() => undefined);
      return leaf !== undefined;
    });
    expect(leaf!.subjectAltName).toContain(`DNS:${host}`);
    expect(await pebble.orders()).toBe(base + 2); // the holder's, and B's
    expect(b!.logger.lines.filter((l) => l.includes("Obtained certificate")).length).toBe(1);
    await closeAll();
  });

  it("shares a rate limit: rate 5, burst 5, 20 requests over both instances → exactly 5 pass", async () => {
    await closeAll(); // left over by a failed test
    n++;
    const toml = (instance: string) => `
[cluster]
redis_url = "${redis.url}"
key_prefix = "t${n}:"
instance_name = "${instance}"

[[sites]]
name = "limited"
port = 0
bind = "127.0.0.1"
static_dir = "${www}"

[sites.rate_limit]
rate = 5
burst = 5
key = "header:X-Client"
`;
    const [a, b] = await Promise.all([start(toml("edge-a")), start(toml("edge-b"))]);
    const send = async (bws: TestBws, client: string) => {
      const res = await fetch(bws.url("/"), { headers: { "x-client": client } });
      await res.body?.cancel();
      return res.status;
    };
    // Each instance's first take loads the script; a client of its own keeps the count clean.
    for (const bws of [a, b]) {
      await waitFor("a bucket in Redis", 5000, async () =>
        (await send(bws, "warm-up")) === 200 &&
        (await redis.raw("KEYS", `t${n}:rl:*`)).includes("warm-up"));
    }
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => send(i % 2 ? a : b, "c1")),
    );
    expect(statuses.filter((s) => s === 200).length).toBe(5);
    expect(statuses.filter((s) => s === 429).length).toBe(15);
    await closeAll();
  });

  it("answers at once with a stalled Redis (local buckets), and shares again when it answers", async () => {
    await closeAll();
    n++;
    const bws = await start(`
[cluster]
redis_url = "${redis.url}"
key_prefix = "t${n}:"

[[sites]]
name = "limited"
port = 0
bind = "127.0.0.1"
static_dir = "${www}"

[sites.rate_limit]
rate = 1000
burst = 1000
`);
    const get = async () => {
      const t = performance.now();
      const res = await fetch(bws.url("/"));
      await res.body?.cancel();
      return { status: res.status, ms: performance.now() - t };
    };
    const keys = () => redis.raw("KEYS", `t${n}:rl:*`);
    const shared = async () => (await get()).status === 200 && (await keys()).includes("127.0.0.1");
    await waitFor("a bucket in Redis", 5000, shared);
    const backs = () => bws.logger.lines.filter((l) => l.includes("Redis is reachable again"));
    const backsBefore = backs().length;
    redis.pause();
    const results: { status: number; ms: number }[] = [];
    try {
      for (let i = 0; i < 20; i++) results.push(await get());
    } finally {
      redis.resume();
    }
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    // The first request waits out the 100 ms deadline; the rest do not ask a Redis known slow.
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(1000);
    // (Were every request to wait it, all 20 would take 100 ms or more.)
    expect(results.filter((r) => r.ms >= 95).length).toBeLessThanOrEqual(5);
    expect(bws.logger.lines.some((l) => l.includes("Redis is too slow"))).toBe(true);
    await waitFor("Redis to be used again", 5000, () => backs().length > backsBefore);
    await redis.raw("FLUSHDB");
    await waitFor("a bucket in Redis again", 5000, shared);
    await closeAll();
  });
});

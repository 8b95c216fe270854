import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "../../tests/helpers/redis.ts";
import { waitFor } from "../../tests/helpers/wait.ts";
import { AcmeStorage } from "../acme/storage.ts";
import { AcmeError } from "../acme/errors.ts";
import { connectRedis, type RedisLink } from "./redis_link.ts";
import { CertificateChannel, RedisAcmeStore } from "./redis_acme_store.ts";
import { RedisLocks } from "./renewal_lock.ts";

if (!hasRedis) console.warn(`Skipping Redis ACME store tests: ${REDIS_SERVER} is not installed`);

const CA = "https://ca.test/dir";
const PAIR = { certPem: "-----CERT 1-----\n", keyPem: "-----KEY 1-----\n" };

describe("RedisAcmeStore", { skip: !hasRedis }, () => {
  let redis: TestRedis;
  let tmp = "";
  const links: RedisLink[] = [];
  let n = 0;

  /** One instance's store: its own link, channel, locks and local directory. */
  const instance = async (name: string, prefix: string) => {
    const link = connectRedis(redis.url, { maxReconnectDelayMs: 100 });
    links.push(link);
    expect(await link.waitUp(5000)).toBe(true);
    const dir = join(tmp, `${prefix}${name}`);
    const store = new RedisAcmeStore({
      link,
      prefix,
      directoryUrl: CA,
      local: new AcmeStorage(dir),
      locks: new RedisLocks(link, { owner: name, ttlMs: 5000 }),
      channel: new CertificateChannel(link, prefix),
      owner: name,
    });
    return { link, store, dir };
  };

  before(async () => {
    redis = await startRedis();
    tmp = await Deno.makeTempDir({ prefix: "bws_redis_acme_" });
  });

  after(async () => {
    for (const l of links) await l.close();
    await redis?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("answers a challenge another instance published, until it is removed", async () => {
    const p = `t${++n}:`;
    const a = await instance("a", p);
    const b = await instance("b", p);
    await a.store.writeChallenge("tok_1", "tok_1.thumb");
    expect(await b.store.readChallenge("tok_1")).toBe("tok_1.thumb");
    expect(await b.store.readChallenge("../etc")).toBeNull();
    await a.store.removeChallenge("tok_1");
    expect(await b.store.readChallenge("tok_1")).toBeNull();
  });

  it("keeps the first account key stored, in Redis and in each local copy", async () => {
    const p = `t${++n}:`;
    const a = await instance("a", p);
    const b = await instance("b", p);
    expect(await a.store.writeAccountKey("KEY-A")).toBe("KEY-A");
    expect(await b.store.writeAccountKey("KEY-B")).toBe("KEY-A");
    expect(await b.store.readAccountKey()).toBe("KEY-A");
    expect(await Deno.readTextFile(join(b.dir, "account.key"))).toBe("KEY-A");
  });

  it("announces a stored certificate; the others read it and keep a local copy", async () => {
    const p = `t${++n}:`;
    const a = await instance("a", p);
    const b = await instance("b", p);
    let told = 0;
    b.store.watch(["x.test", "www.x.test"], () => told++);
    // The subscription is made on first watch: announce until it is heard.
    await waitFor("the announcement", 5000, async () => {
      await a.store.writeCertificate(["x.test", "www.x.test"], PAIR);
      return told > 0;
    });
    expect(await b.store.readCertificate(["x.test", "www.x.test"])).toEqual(PAIR);
    expect(await Deno.readTextFile(join(b.dir, "x.test", "cert.pem"))).toBe(PAIR.certPem);
    expect(await b.store.readCertificate(["y.test"])).toBeNull();
  });

  it("refuses a certificate written under a lock that another instance took over", async () => {
    const p = `t${++n}:`;
    const a = await instance("a", p);
    const b = await instance("b", p);
    const lease = await a.store.lock(["z.test"]);
    expect(lease).not.toBeNull();
    expect(await b.store.lock(["z.test"])).toBeNull();
    await b.link.command(["DEL", (lease as unknown as { key: string }).key]); // "expired"
    const taken = await b.store.lock(["z.test"]);
    expect(taken).not.toBeNull();
    await expect(a.store.writeCertificate(["z.test"], PAIR, lease!)).rejects.toMatchObject({
      kind: "lock_lost",
    });
    expect(await b.store.readCertificate(["z.test"])).toBeNull();
    // The certificate a obtained is still kept locally by a.
    expect(await Deno.readTextFile(join(a.dir, "z.test", "key.pem"))).toBe(PAIR.keyPem);
    await b.store.writeCertificate(["z.test"], PAIR, taken!);
    expect(await a.store.readCertificate(["z.test"])).toEqual(PAIR);
    await lease!.release();
    await taken!.release();
  });

  it("reads the local copy while Redis is down, and writes it back to an emptied Redis", async () => {
    const p = `t${++n}:`;
    const a = await instance("a", p);
    const b = await instance("b", p);
    await a.store.writeCertificate(["w.test"], PAIR);
    expect(await b.store.readCertificate(["w.test"])).toEqual(PAIR); // b's local copy made
    await redis.kill();
    try {
      await waitFor("the links to notice", 5000, () => b.link.state === "down");
      expect(await b.store.readCertificate(["w.test"])).toEqual(PAIR);
      await expect(b.store.readCertificate(["none.test"])).rejects.toBeInstanceOf(AcmeError);
      await expect(b.store.readCertificate(["none.test"])).rejects.toMatchObject({
        kind: "store_unavailable",
      });
      await expect(b.store.lock(["w.test"])).rejects.toMatchObject({ kind: "store_unavailable" });
    } finally {
      await redis.restart(); // without the data
    }
    await waitFor("the links to reconnect", 5000, () => a.link.usable && b.link.usable);
    expect(await b.store.readCertificate(["w.test"])).toEqual(PAIR);
    const back = await a.link.command(["GET", `${p}acme:${CA_ID}:cert:w.test`]);
    expect(JSON.parse(back as string).by).toBe("b");
  });
});

/** The CA part of the keys: first 12 hex digits of the SHA-256 of the directory URL. */
const CA_ID = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(CA)).then((d) =>
  [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("").slice(0, 12)
);

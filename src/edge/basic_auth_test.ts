import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import type { BasicAuthConfig } from "../config/types.ts";
import { BasicAuth, parseBasicCredentials } from "./basic_auth.ts";
import { bcryptCost } from "./bcrypt_hash.ts";
import {
  type BcryptVerifier,
  InlineBcryptVerifier,
  WorkerBcryptVerifier,
} from "./bcrypt_verifier.ts";
import { CredentialCache } from "./credential_cache.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { EdgeRefusal, EdgeVerdict } from "./types.ts";

const HTPASSWD = "/usr/bin/htpasswd";
const hasHtpasswd = await Deno.stat(HTPASSWD).then(() => true, () => false);
if (!hasHtpasswd) {
  console.log(`htpasswd -B tests skipped: ${HTPASSWD} is missing (Debian package apache2-utils)`);
}

const basic = (user: string, password: string) =>
  testRequest({
    headers: [[
      "Authorization",
      "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`))),
    ]],
  });

const config = (over: Partial<BasicAuthConfig>): BasicAuthConfig => ({
  realm: "restricted",
  users: {},
  htpasswdFile: "",
  forwardAuthorization: false,
  ...over,
});

/** Counts the checks that reach bcrypt and remembers the hashes they used. */
class CountingVerifier implements BcryptVerifier {
  readonly hashes: string[] = [];
  readonly #inner = new InlineBcryptVerifier();
  verify(password: string, hash: string): Promise<boolean> {
    this.hashes.push(hash);
    return this.#inner.verify(password, hash);
  }
}

const refusal = (v: EdgeVerdict) => v as EdgeRefusal;

describe("parseBasicCredentials", () => {
  it("splits at the first colon, decodes UTF-8, accepts any case of the scheme", () => {
    expect(parseBasicCredentials("Basic " + btoa("alice:pa:ss"))).toEqual({
      user: "alice",
      password: "pa:ss",
    });
    expect(parseBasicCredentials("basic   " + btoa("u:"))).toEqual({ user: "u", password: "" });
    const utf8 = String.fromCharCode(...new TextEncoder().encode("jürgen:pässwörd"));
    expect(parseBasicCredentials("BASIC " + btoa(utf8))).toEqual({
      user: "jürgen",
      password: "pässwörd",
    });
  });

  it("refuses other schemes, bad base64 and a missing colon", () => {
    expect(parseBasicCredentials("Bearer abc")).toBeNull();
    expect(parseBasicCredentials("Basic !!!")).toBeNull();
    expect(parseBasicCredentials("Basic " + btoa("nocolon"))).toBeNull();
    expect(parseBasicCredentials("Basic")).toBeNull();
  });
});

describe("BasicAuth", () => {
  const hash4 = bcrypt.hashSync("secret", 4); // $2b$, as the chosen package writes it

  it("lets the right password through and removes Authorization from the upstream request", async () => {
    const auth = new BasicAuth(config({ users: { alice: hash4 } }), {
      verifier: new InlineBcryptVerifier(),
    });
    expect(await auth.check(basic("alice", "secret"), "x")).toEqual({
      refused: false,
      removeHeaders: ["authorization"],
      addHeaders: [],
    });
  });

  it("forward_authorization = true lets it through unchanged", async () => {
    const auth = new BasicAuth(config({ users: { alice: hash4 }, forwardAuthorization: true }), {
      verifier: new InlineBcryptVerifier(),
    });
    expect(await auth.check(basic("alice", "secret"), "x")).toBeNull();
  });

  it("401 with WWW-Authenticate for a missing, malformed or wrong credential", async () => {
    const auth = new BasicAuth(config({ realm: 'staff "only"', users: { alice: hash4 } }), {
      verifier: new InlineBcryptVerifier(),
    });
    for (
      const req of [
        testRequest(),
        testRequest({ headers: [["authorization", "Bearer x"]] }),
        basic("alice", "wrong"),
        basic("mallory", "secret"),
      ]
    ) {
      const v = refusal(await auth.check(req, "x"));
      expect(v.rule).toBe("basic_auth");
      expect(v.response.status).toBe(401);
      expect(Object.fromEntries(v.response.headers)["www-authenticate"]).toBe(
        'Basic realm="staff \\"only\\"", charset="UTF-8"',
      );
    }
  });

  it("an unknown user costs a bcrypt check of the same cost as a known one", async () => {
    const verifier = new CountingVerifier();
    const hash6 = bcrypt.hashSync("secret", 6);
    const auth = new BasicAuth(config({ users: { alice: hash6 } }), { verifier });
    expect(refusal(await auth.check(basic("nobody", "secret"), "x")).response.status).toBe(401);
    expect(refusal(await auth.check(basic("alice", "nope"), "x")).response.status).toBe(401);
    expect(verifier.hashes).toHaveLength(2);
    expect(bcryptCost(verifier.hashes[0])).toBe(6);
    expect(verifier.hashes[0]).not.toBe(hash6);
  });

  it("remembers a verified credential: the next request answers synchronously, no bcrypt", async () => {
    const verifier = new CountingVerifier();
    const cache = new CredentialCache(16, 60_000);
    let now = 1_000_000;
    const auth = new BasicAuth(config({ users: { alice: hash4 } }), {
      verifier,
      cache,
      clock: () => now,
    });
    const first = auth.check(basic("alice", "secret"), "x");
    expect(first).toBeInstanceOf(Promise);
    expect(await first).not.toBeNull();
    const second = auth.check(basic("alice", "secret"), "x");
    expect(second).not.toBeInstanceOf(Promise);
    expect((second as EdgeVerdict)?.refused).toBe(false);
    expect(verifier.hashes).toHaveLength(1);
    // A wrong password is never served from the cache; an expired entry is checked again.
    expect(refusal(await auth.check(basic("alice", "Secret"), "x")).response.status).toBe(401);
    now += 60_001;
    expect(auth.check(basic("alice", "secret"), "x")).toBeInstanceOf(Promise);
    expect(verifier.hashes).toHaveLength(3);
  });

  it("a changed hash (a reload with a new password) stops the old password at once", async () => {
    const cache = new CredentialCache();
    const verifier = new InlineBcryptVerifier();
    const before = new BasicAuth(config({ users: { alice: hash4 } }), { verifier, cache });
    expect((await before.check(basic("alice", "secret"), "x"))?.refused).toBe(false);
    const after = new BasicAuth(config({ users: { alice: bcrypt.hashSync("new", 4) } }), {
      verifier,
      cache, // even sharing the cache
    });
    expect(refusal(await after.check(basic("alice", "secret"), "x")).response.status).toBe(401);
    expect((await after.check(basic("alice", "new"), "x"))?.refused).toBe(false);
  });

  it("simultaneous requests with one credential share one bcrypt check", async () => {
    const verifier = new CountingVerifier();
    const auth = new BasicAuth(config({ users: { alice: hash4 } }), { verifier });
    const all = await Promise.all(
      Array.from({ length: 6 }, () => auth.check(basic("alice", "secret"), "x")),
    );
    expect(all.every((v) => v?.refused === false)).toBe(true);
    expect(verifier.hashes).toHaveLength(1);
  });

  it("the credential cache stays bounded", () => {
    const cache = new CredentialCache(100, 60_000);
    for (let i = 0; i < 10_000; i++) cache.add(`k${i}`, 0);
    expect(cache.size).toBe(100);
    expect(cache.has("k9999", 1)).toBe(true);
    expect(cache.has("k0", 1)).toBe(false);
  });
});

describe("BasicAuth with htpasswd files", () => {
  let dir = "";
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws-basic-auth-" });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("checks a hash written by `htpasswd -B` ($2y$)", { skip: !hasHtpasswd }, async () => {
    const file = join(dir, "users");
    const run = await new Deno.Command(HTPASSWD, {
      args: ["-cbB", "-C", "5", file, "bob", "hunter2"],
      stderr: "piped",
    }).output();
    expect(run.code).toBe(0);
    expect(await Deno.readTextFile(file)).toMatch(/^bob:\$2y\$05\$/);
    const auth = new BasicAuth(config({ htpasswdFile: file, users: { alice: hash4() } }), {
      verifier: new InlineBcryptVerifier(),
    });
    expect(auth.userCount).toBe(2);
    expect((await auth.check(basic("bob", "hunter2"), "x"))?.refused).toBe(false);
    expect(refusal(await auth.check(basic("bob", "hunter3"), "x")).response.status).toBe(401);
    expect((await auth.check(basic("alice", "secret"), "x"))?.refused).toBe(false);
  });

  it("refuses to build from a file that is not usable", async () => {
    const file = join(dir, "bad");
    await Deno.writeTextFile(file, "bob:$apr1$x$y\n");
    expect(() => new BasicAuth(config({ htpasswdFile: file }))).toThrow(/line 1/);
  });
});

function hash4(): string {
  return bcrypt.hashSync("secret", 4);
}

describe("WorkerBcryptVerifier", () => {
  it("checks in a worker thread: the event loop keeps running during cost-10 checks", async () => {
    const hash = bcrypt.hashSync("pw", 10);
    // Cost of one check on this thread, for comparison (and for the report).
    const inline = new InlineBcryptVerifier();
    const t0 = performance.now();
    expect(await inline.verify("pw", hash)).toBe(true);
    const inlineMs = performance.now() - t0;
    const hash5 = bcrypt.hashSync("pw", 5);
    const t1 = performance.now();
    for (let i = 0; i < 20; i++) await inline.verify("pw", hash5);
    console.log(
      `bcryptjs: ${inlineMs.toFixed(1)} ms per check at cost 10, ` +
        `${((performance.now() - t1) / 20).toFixed(2)} ms at cost 5`,
    );

    const verifier = new WorkerBcryptVerifier();
    try {
      await verifier.verify("warm-up", hash5); // the worker's start-up is not measured
      let last = performance.now();
      let maxGap = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 2);
      const results = await Promise.all([
        verifier.verify("pw", hash),
        verifier.verify("nope", hash),
        verifier.verify("pw", hash),
      ]);
      clearInterval(timer);
      expect(results).toEqual([true, false, true]);
      // Three checks ran for ~3 × inlineMs; the longest pause of the main thread is far less
      // than one check would have stalled it.
      expect(maxGap).toBeLessThan(inlineMs / 2);
    } finally {
      verifier.close();
    }
  });

  it("refuses checks past maxPending (a flood of wrong passwords is answered 503)", async () => {
    const verifier = new WorkerBcryptVerifier({ maxPending: 2 });
    try {
      const hash = bcrypt.hashSync("pw", 8);
      const auth = new BasicAuth(config({ users: { alice: hash } }), { verifier });
      const verdicts = await Promise.all(
        Array.from({ length: 5 }, (_, i) => auth.check(basic("alice", `wrong${i}`), "x")),
      );
      const statuses = verdicts.map((v) => refusal(v).response.status);
      expect(statuses).toEqual([401, 401, 503, 503, 503]);
      expect(Object.fromEntries(refusal(verdicts[4]).response.headers)["retry-after"]).toBe("1");
    } finally {
      verifier.close();
    }
  });

  it("stops its thread when idle and starts it again on the next check", async () => {
    const verifier = new WorkerBcryptVerifier({ idleMs: 50 });
    try {
      const hash = bcrypt.hashSync("pw", 4);
      expect(await verifier.verify("pw", hash)).toBe(true);
      expect(verifier.running).toBe(true);
      await new Promise((r) => setTimeout(r, 150));
      expect(verifier.running).toBe(false);
      expect(await verifier.verify("pw", hash)).toBe(true);
      expect(await verifier.verify("pw", "not a hash")).toBe(false);
    } finally {
      verifier.close();
    }
  });
});

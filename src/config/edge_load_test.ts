import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { parseConfigText } from "./load.ts";
import { type Config, ConfigError, type ConfigIssue } from "./types.ts";

const BASE = "/srv/bws";
const SITE = `[[sites]]
name = "main"
hostname = "example.com"
port = 8080
static_dir = "public"
`;

const load = (text: string, baseDir = BASE): Config =>
  parseConfigText(text, { file: "bws.toml", baseDir });

function issuesOf(text: string, baseDir = BASE): readonly ConfigIssue[] {
  try {
    load(text, baseDir);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("config was accepted");
}

function oneIssue(text: string, baseDir = BASE): ConfigIssue {
  const issues = issuesOf(text, baseDir);
  expect(issues.map((i) => `${i.path}: ${i.message}`)).toHaveLength(1);
  return issues[0];
}

const HASH = bcrypt.hashSync("secret", 4).replace(/^\$2b\$/, "$2y$");

const proxySite = (extra = "") =>
  `${SITE}
[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "backend"
url = "http://127.0.0.1:3001"

[[sites.proxy.routes]]
path = "/api/"
upstream = "backend"
${extra}`;

describe("edge protection config: defaults", () => {
  it("leaves every table null and proxy_protocol off when none is written", () => {
    const s = load(proxySite()).sites[0];
    expect([s.access, s.rateLimit, s.basicAuth, s.forwardAuth]).toEqual([null, null, null, null]);
    expect(s.proxyProtocol).toBe(false);
    const r = s.proxy.routes[0];
    expect([r.access, r.rateLimit, r.basicAuth, r.forwardAuth]).toEqual([null, null, null, null]);
  });

  it("builds a written table with its defaults, even an empty one", () => {
    const s = load(`${SITE}
[sites.access]
[sites.rate_limit]
rate = 2.5
[sites.basic_auth]
users = { alice = "${HASH}" }
[sites.forward_auth]
url = "http://127.0.0.1:9091/api/verify?rd=https%3A%2F%2Flogin"
`).sites[0];
    expect(s.access).toEqual({ allow: [], deny: [] });
    expect(s.rateLimit).toEqual({ rate: 2.5, burst: 3, key: "ip" });
    expect(s.basicAuth).toEqual({
      realm: "restricted",
      users: { alice: HASH },
      htpasswdFile: "",
      forwardAuthorization: false,
    });
    expect(s.forwardAuth).toEqual({
      url: "http://127.0.0.1:9091/api/verify?rd=https%3A%2F%2Flogin",
      copyHeaders: [],
    });
  });

  it("reads the README's example tables at site level and per route", () => {
    const c = load(`[server]
trusted_proxies = ["10.0.0.0/8"]
${
      proxySite(`
[sites.proxy.routes.rate_limit]
rate = 1
burst = 2
key = "header:X-Api-Key"

[sites.proxy.routes.access]
allow = ["2001:db8::/32", "::1"]
`).replace('static_dir = "public"', 'static_dir = "public"\nproxy_protocol = true')
    }
[sites.access]
allow = ["203.0.113.0/24"]
deny = ["203.0.113.9"]
[sites.rate_limit]
rate = 10
burst = 20
key = "ip"
[sites.basic_auth]
realm = "restricted"
users = { alice = "${HASH}" }
forward_authorization = true
[sites.forward_auth]
url = "https://auth.internal/api/verify"
copy_headers = ["Remote-User", "Remote-Groups"]
`);
    const s = c.sites[0];
    expect(s.proxyProtocol).toBe(true);
    expect(s.access).toEqual({ allow: ["203.0.113.0/24"], deny: ["203.0.113.9"] });
    expect(s.rateLimit).toEqual({ rate: 10, burst: 20, key: "ip" });
    expect(s.basicAuth?.forwardAuthorization).toBe(true);
    expect(s.forwardAuth?.copyHeaders).toEqual(["Remote-User", "Remote-Groups"]);
    const r = s.proxy.routes[0];
    expect(r.rateLimit).toEqual({ rate: 1, burst: 2, key: "header:X-Api-Key" });
    expect(r.access).toEqual({ allow: ["2001:db8::/32", "::1"], deny: [] });
    expect(r.basicAuth).toBeNull();
  });
});

describe("edge protection config: bws check errors with key and line", () => {
  it("a bad CIDR in allow or deny", () => {
    const i = oneIssue(`${SITE}
[sites.access]
allow = ["10.0.0.0/8"]
deny = ["10.0.0.0/33"]
`);
    expect(i.path).toBe("sites[0].access.deny[0]");
    expect(i.message).toContain('Cannot parse CIDR "10.0.0.0/33"');
    expect(i.line).toBe(9);
  });

  it("an unknown key, with a suggestion", () => {
    const i = oneIssue(`${SITE}
[sites.rate_limit]
rate = 5
burts = 5
`);
    expect(i.path).toBe("sites[0].rate_limit.burts");
    expect(i.message).toContain("did you mean `burst`?");
    expect(i.line).toBe(9);
  });

  it("rate and burst out of range, rate missing, a bad key", () => {
    const issues = issuesOf(`${SITE}
[sites.rate_limit]
rate = 0
burst = 0
key = "cookie:session"
[[sites]]
name = "b"
port = 8081
static_dir = "x"
[sites.rate_limit]
burst = 5
[[sites]]
name = "c"
port = 8082
static_dir = "x"
[sites.rate_limit]
rate = 2_000_000
`);
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["sites[0].rate_limit.rate", 8],
      ["sites[0].rate_limit.burst", 9],
      ["sites[0].rate_limit.key", 10],
      ["sites[1].rate_limit.rate", 15],
      ["sites[2].rate_limit.rate", 22],
    ]);
    expect(issues[0].message).toBe("Cannot use rate 0: must be > 0 requests per second");
    expect(issues[1].message).toContain("must be 1..1000000");
    expect(issues[2].message).toContain('expected "ip" or "header:NAME"');
    expect(issues[3].message).toBe("missing required key `rate`");
    expect(issues[4].message).toContain("must be 0..1000000");
  });

  it("a user hash that is not bcrypt, a user name with a colon", () => {
    const issues = issuesOf(`${SITE}
[sites.basic_auth]
users = { alice = "$apr1$abc$def", "bo:b" = "${HASH}", carol = "$2y$10$short" }
`);
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["sites[0].basic_auth.users.alice", 8],
      ['sites[0].basic_auth.users."bo:b"', 8],
      ["sites[0].basic_auth.users.carol", 8],
    ]);
    expect(issues[0].message).toContain("MD5 (apr1)");
    expect(issues[1].message).toContain('contains ":"');
    expect(issues[2].message).toContain("malformed bcrypt hash");
  });

  it("basic_auth without users", () => {
    const i = oneIssue(`${SITE}
[sites.basic_auth]
realm = "x"
`);
    expect(i.path).toBe("sites[0].basic_auth");
    expect(i.message).toContain("needs users or an htpasswd_file");
    expect(i.line).toBe(7);
  });

  it("forward_auth url that is not http(s), or missing", () => {
    const issues = issuesOf(proxySite(`
[sites.proxy.routes.forward_auth]
url = "ftp://auth.internal/verify"
[[sites.proxy.routes]]
path = "/b/"
upstream = "backend"
[sites.proxy.routes.forward_auth]
copy_headers = ["Remote User"]
`));
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["sites[0].proxy.routes[0].forward_auth.url", 19],
      ["sites[0].proxy.routes[1].forward_auth.url", 23],
      ["sites[0].proxy.routes[1].forward_auth.copy_headers[0]", 24],
    ]);
    expect(issues[0].message).toContain("scheme must be http or https");
    expect(issues[1].message).toBe("missing required key `url`");
    expect(issues[2].message).toContain("not a valid HTTP header name");
  });

  it("proxy_protocol disagreeing between sites of one port, or without trusted_proxies", () => {
    const issues = issuesOf(`${SITE}proxy_protocol = true
[[sites]]
name = "b"
hostname = "b.example.com"
port = 8080
static_dir = "x"
`);
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["sites[0].proxy_protocol", 6],
      ["sites[1].proxy_protocol", 7],
    ]);
    expect(issues[0].message).toContain("needs server.trusted_proxies");
    expect(issues[1].message).toContain('share 0.0.0.0:8080 but only "main" sets proxy_protocol');
    // Agreeing sites with a trusted peer are fine.
    const ok = load(`[server]
trusted_proxies = ["127.0.0.1"]
${SITE}proxy_protocol = true
[[sites]]
name = "b"
hostname = "b.example.com"
port = 8080
static_dir = "x"
proxy_protocol = true
`);
    expect(ok.sites.map((s) => s.proxyProtocol)).toEqual([true, true]);
  });
});

describe("edge protection config: htpasswd_file", () => {
  let dir = "";
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws-htpasswd-" });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  const withFile = (file: string) =>
    `${SITE}
[sites.basic_auth]
htpasswd_file = "${file}"
`;

  it("resolves against the config's directory and loads a valid file", async () => {
    await Deno.writeTextFile(
      join(dir, "users.htpasswd"),
      `# staff\n\nalice:${HASH}\r\nbob:${HASH}\n`,
    );
    const c = load(withFile("users.htpasswd"), dir);
    expect(c.sites[0].basicAuth?.htpasswdFile).toBe(join(dir, "users.htpasswd"));
  });

  it("an unreadable file", () => {
    const i = oneIssue(withFile("missing.htpasswd"), dir);
    expect(i.path).toBe("sites[0].basic_auth.htpasswd_file");
    expect(i.message).toBe(
      `Cannot read htpasswd file "${join(dir, "missing.htpasswd")}": no such file`,
    );
    expect(i.line).toBe(8);
    expect(oneIssue(withFile("."), dir).message).toContain("is a directory");
  });

  it("every bad line of the file, by its line number", async () => {
    await Deno.writeTextFile(
      join(dir, "bad.htpasswd"),
      `alice:${HASH}\nbob:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\njustaname\ncarol:$6$salt$x\nalice:${HASH}\n`,
    );
    const issues = issuesOf(withFile("bad.htpasswd"), dir);
    const file = join(dir, "bad.htpasswd");
    expect(issues.map((i) => i.message)).toEqual([
      `Cannot use htpasswd file "${file}": line 2: the hash of user "bob" is not a bcrypt hash ` +
      "($2a$, $2b$ or $2y$; `htpasswd -B` makes one)",
      `Cannot use htpasswd file "${file}": line 3: expected "user:hash"`,
      `Cannot use htpasswd file "${file}": line 4: the hash of user "carol" is a SHA-crypt ` +
      "hash; bcrypt is required",
      `Cannot use htpasswd file "${file}": line 5: user "alice" is listed twice`,
    ]);
    expect(issues.every((i) => i.path === "sites[0].basic_auth.htpasswd_file")).toBe(true);
  });

  it("is read again on every load: a fixed file passes the next time", async () => {
    const file = join(dir, "changing.htpasswd");
    await Deno.writeTextFile(file, "alice:plain\n");
    expect(oneIssue(withFile("changing.htpasswd"), dir).message).toContain("line 1");
    await Deno.writeTextFile(file, `alice:${HASH}\n`);
    expect(load(withFile("changing.htpasswd"), dir).sites[0].basicAuth?.htpasswdFile).toBe(file);
  });

  it("a user both inline and in the file", async () => {
    await Deno.writeTextFile(join(dir, "dup.htpasswd"), `alice:${HASH}\n`);
    const i = oneIssue(`${withFile("dup.htpasswd")}users = { alice = "${HASH}" }\n`, dir);
    expect(i.path).toBe("sites[0].basic_auth.users.alice");
    expect(i.message).toContain("in both users and htpasswd_file");
  });
});

import { after, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  configFromObject,
  loadConfigFile,
  loadConfigFileWithWarnings,
  parseConfigText,
  parseConfigTextWithWarnings,
} from "./load.ts";
import { ConfigError, type ConfigIssue } from "./types.ts";

const BASE = "/srv/bws";
const SITE = `[[sites]]
name = "main"
hostname = "Example.COM"
port = 8080
static_dir = "public"
`;

const load = (text: string) => parseConfigText(text, { file: "bws.toml", baseDir: BASE });

/** The issues of a config that must fail. */
function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("config was accepted");
}

function oneIssue(text: string): ConfigIssue {
  const issues = issuesOf(text);
  expect(issues.map((i) => `${i.path}: ${i.message}`)).toHaveLength(1);
  return issues[0];
}

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

describe("defaults", () => {
  it("fills every default of server, management, logging and a site", () => {
    const c = load(SITE);
    expect(c.source).toBe(join(Deno.cwd(), "bws.toml"));
    expect(c.server).toEqual({
      name: "BWS Proxy Server",
      gracePeriod: 10,
      trustedProxies: [],
      maxBodySize: 100_000_000,
      workers: 1,
      timeouts: { header: 10, keepAlive: 75, body: 30, send: 60, tlsHandshake: 10 },
      limits: {
        maxConnections: 20000,
        maxConnectionsPerIp: 0,
        maxHeaderSize: 32768,
        maxHeaders: 100,
      },
    });
    expect(c.management).toEqual({ enabled: false, host: "127.0.0.1", port: 7654, apiKey: "" });
    expect(c.logging).toEqual({
      level: "info",
      format: "text",
      accessLog: true,
      output: "stdout",
      filePath: "",
    });
    const s = c.sites[0];
    expect(s.name).toBe("main");
    expect(s.hostname).toBe("example.com");
    expect(s.hostnames).toEqual([]);
    expect(s.port).toBe(8080);
    expect(s.bind).toBe("0.0.0.0");
    expect(s.staticDir).toBe("/srv/bws/public");
    expect(s.indexFile).toBe("index.html");
    expect(s.default).toBe(false);
    expect(s.maxBodySize).toBe(100_000_000);
    expect(s.headers).toEqual({});
    const p = s.proxy;
    expect(p.enabled).toBe(false);
    expect(p.upstreams).toEqual([]);
    expect(p.routes).toEqual([]);
    expect(p.loadBalancing).toEqual({ method: "round_robin" });
    expect(p.headers).toEqual({
      addXForwarded: true,
      addForwarded: true,
      preserveHost: true,
      both: { add: {}, remove: [] },
      request: { add: {}, remove: [] },
      response: { add: {}, remove: [] },
    });
    expect(p.timeout).toEqual({ connect: 5, read: 30, write: 30 });
    expect(p.healthCheck).toEqual({
      enabled: false,
      path: "/health",
      interval: 30,
      timeout: 5,
      retries: 3,
      rise: 2,
      expectStatus: "2xx",
    });
    expect(p.passiveHealth).toEqual({ enabled: true, maxFails: 3, failTimeout: 10 });
    expect(p.retry).toEqual({ attempts: 2, tryDuration: 0 });
    expect(p.websocket).toEqual({ maxBuffered: 16 * 1024 * 1024, idleTimeout: 0, pingInterval: 0 });
    expect(s.ssl).toEqual({
      enabled: false,
      certFile: "",
      keyFile: "",
      autoCert: false,
      domains: [],
      httpPort: 80,
      redirectHttp: false,
      acme: {
        enabled: false,
        email: "",
        staging: false,
        challengeDir: "",
        directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
        storageDir: "/srv/bws/certs",
        renewBeforeDays: 30,
      },
    });
  });

  it("derives defaults from other keys: staging URL, redirect_http, site body limit", () => {
    const c = load(`[server]
max_body_size = "1MiB"
${SITE}max_body_size = 2048
[[sites]]
name = "tls"
hostname = "secure.example.com"
port = 8443
static_dir = "/var/www"
[sites.ssl]
enabled = true
auto_cert = true
[sites.ssl.acme]
enabled = true
staging = true
storage_dir = "state/certs"
`);
    expect(c.server.maxBodySize).toBe(1024 * 1024);
    expect(c.sites[0].maxBodySize).toBe(2048);
    expect(c.sites[1].maxBodySize).toBe(1024 * 1024);
    expect(c.sites[1].staticDir).toBe("/var/www");
    expect(c.sites[1].ssl.redirectHttp).toBe(true);
    expect(c.sites[1].ssl.acme.directoryUrl).toBe(
      "https://acme-staging-v02.api.letsencrypt.org/directory",
    );
    expect(c.sites[1].ssl.acme.storageDir).toBe("/srv/bws/state/certs");
  });

  it("accepts interval_seconds, both remove forms and lower-cases host names", () => {
    const c = load(
      proxySite(`
[sites.proxy.health_check]
enabled = true
interval_seconds = 2.5

[sites.proxy.headers.remove]
"Server" = true
"X-Keep" = false

[sites.proxy.headers.request]
remove = ["Cookie"]

[sites.proxy.headers.response.add]
"X-Served-By" = "bws"
`).replace(
        'hostname = "Example.COM"',
        'hostname = "Example.COM"\nhostnames = ["WWW.Example.com", "*.Example.org"]',
      ),
    );
    const p = c.sites[0].proxy;
    expect(p.healthCheck.interval).toBe(2.5);
    expect(p.headers.both.remove).toEqual(["Server"]);
    expect(p.headers.request.remove).toEqual(["Cookie"]);
    expect(p.headers.response.add).toEqual({ "X-Served-By": "bws" });
    expect(c.sites[0].hostnames).toEqual(["www.example.com", "*.example.org"]);
    expect(p.routes[0]).toEqual({
      path: "/api/",
      upstream: "backend",
      stripPrefix: false,
      websocket: false,
      access: null,
      rateLimit: null,
      basicAuth: null,
      forwardAuth: null,
    });
    expect(p.upstreams[0]).toEqual({ name: "backend", url: "http://127.0.0.1:3001", weight: 1 });
  });

  it("returns a deeply frozen config", () => {
    const c = load(proxySite());
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.sites[0].proxy.routes[0])).toBe(true);
    expect(Object.isFrozen(c.sites[0].proxy.headers.both.add)).toBe(true);
    expect(() => {
      (c.sites[0].proxy.routes as unknown[]).push({});
    }).toThrow();
  });
});

describe("unknown keys and wrong types", () => {
  it("reports a misspelled key in a nested array table with path, line and suggestion", () => {
    const text = proxySite("strip_prefx = true\n");
    const issue = oneIssue(text);
    expect(issue.path).toBe("sites[0].proxy.routes[0].strip_prefx");
    const line = text.split("\n").findIndex((l) => l.startsWith("strip_prefx")) + 1;
    expect(issue.line).toBe(line);
    expect(issue.column).toBe(1);
    expect(issue.message).toContain("did you mean `strip_prefix`?");
    try {
      load(text);
    } catch (e) {
      expect((e as Error).message).toBe(
        `bws.toml:${line}:1: sites[0].proxy.routes[0].strip_prefx: unknown key \`strip_prefx\` in ` +
          "sites[0].proxy.routes[0]; did you mean `strip_prefix`?",
      );
    }
  });

  it("says where a key belongs when it is in the wrong table", () => {
    const issue = oneIssue(
      proxySite().replace("enabled = true", "enabled = true\nstrip_prefix = true"),
    );
    expect(issue.path).toBe("sites[0].proxy.strip_prefix");
    expect(issue.message).toBe(
      "unknown key `strip_prefix` in sites[0].proxy; it belongs in [[sites.proxy.routes]]",
    );
  });

  it("suggests top-level table names", () => {
    const issue = oneIssue(`[sever]\nname = "x"\n${SITE}`);
    expect(issue.path).toBe("sever");
    expect(issue.message).toContain("did you mean `server`?");
    expect(issue.line).toBe(1);
  });

  it("reports wrong types with the value found", () => {
    const issues = issuesOf(`[server]
grace_period = "10s"
trusted_proxies = "10.0.0.0/8"
[management]
enabled = "yes"
port = 7654.5
${SITE}default = 1
[sites.proxy]
timeout = 5
`);
    expect(issues.map((i) => [i.path, i.line])).toEqual([
      ["server.grace_period", 2],
      ["server.trusted_proxies", 3],
      ["management.enabled", 5],
      ["management.port", 6],
      ["sites[0].default", 12],
      ["sites[0].proxy.timeout", 14],
    ]);
    expect(issues[0].message).toContain(
      'expected a duration in seconds (number), got a string ("10s")',
    );
    expect(issues[2].message).toBe('expected true or false, got a string ("yes")');
    expect(issues[3].message).toBe("expected an integer, got a float (7654.5)");
    expect(issues[5].message).toBe("expected a table, got an integer (5)");
  });

  it("rejects bad sizes, enum values and sites that are not an array of tables", () => {
    expect(oneIssue(`${SITE}max_body_size = "10 bananas"`).message).toContain(
      'Cannot parse size "10 bananas"',
    );
    const lb = oneIssue(proxySite(`[sites.proxy.load_balancing]\nmethod = "fastest"\n`));
    expect(lb.path).toBe("sites[0].proxy.load_balancing.method");
    expect(lb.message).toBe(
      'Cannot use "fastest": expected one of round_robin, weighted, least_connections, ip_hash, random_two, first',
    );
    expect(oneIssue(`[sites]\nname = "x"\n`).message).toContain("expected an array of tables");
    expect(oneIssue(`[logging]\nlevel = "verbose"\n${SITE}`).message).toContain(
      "trace, debug, info, warn, error",
    );
  });

  it("reports a TOML syntax error with line and column", () => {
    const issue = oneIssue(`${SITE}port = \n`);
    expect(issue.line).toBe(6);
    expect(issue.column).toBeGreaterThan(0);
    expect(issue.message).toMatch(/^Cannot parse TOML: /);
  });

  it("reports missing required keys at the table's line", () => {
    const issue = oneIssue(proxySite(`[[sites.proxy.routes]]\npath = "/b/"\n`));
    expect(issue.path).toBe("sites[0].proxy.routes[1].upstream");
    expect(issue.message).toBe("missing required key `upstream`");
    expect(issue.line).toBe(17);
  });
});

describe("semantic checks", () => {
  const cases: [string, string, string, RegExp][] = [
    ["no sites", `[server]\nname = "x"\n`, "sites", /no sites defined/],
    [
      "duplicate site names",
      SITE + SITE.replace("8080", "8081"),
      "sites[1].name",
      /duplicate site name "main"/,
    ],
    [
      "route to an unknown group",
      proxySite(`[[sites.proxy.routes]]\npath = "/x/"\nupstream = "nope"\n`),
      "sites[0].proxy.routes[1].upstream",
      /Cannot route to upstream "nope".*known: backend/,
    ],
    [
      "invalid upstream URL",
      proxySite().replace("http://127.0.0.1:3001", "ftp://host"),
      "sites[0].proxy.upstreams[0].url",
      /scheme must be http or https/,
    ],
    [
      "weight below 1",
      proxySite().replace(
        'url = "http://127.0.0.1:3001"',
        'url = "http://127.0.0.1:3001"\nweight = 0',
      ),
      "sites[0].proxy.upstreams[0].weight",
      /must be ≥ 1/,
    ],
    [
      "weight not an integer",
      proxySite().replace(
        'url = "http://127.0.0.1:3001"',
        'url = "http://127.0.0.1:3001"\nweight = 1.5',
      ),
      "sites[0].proxy.upstreams[0].weight",
      /expected an integer/,
    ],
    [
      "tls and plain sites on one port",
      `${SITE}[[sites]]\nname = "b"\nport = 8080\nstatic_dir = "x"\n[sites.ssl]\nenabled = true\ncert_file = "c.pem"\nkey_file = "k.pem"\n`,
      "sites[1].ssl.enabled",
      /share 0.0.0.0:8080 but only one has ssl/,
    ],
    [
      "site serving nothing",
      `[[sites]]\nname = "empty"\nport = 80\n`,
      "sites[0]",
      /serves nothing/,
    ],
    [
      "route path without slash",
      proxySite().replace('path = "/api/"', 'path = "api"'),
      "sites[0].proxy.routes[0].path",
      /must start with "\/"/,
    ],
    [
      "duplicate route path",
      proxySite(`[[sites.proxy.routes]]\npath = "/api/"\nupstream = "backend"\n`),
      "sites[0].proxy.routes[1].path",
      /duplicate route path "\/api\/"/,
    ],
    ["port out of range", SITE.replace("8080", "65536"), "sites[0].port", /must be 0..65535/],
    [
      "two default sites",
      `${SITE}default = true\n[[sites]]\nname = "b"\nport = 8080\nstatic_dir = "x"\ndefault = true\n`,
      "sites[1].default",
      /two default sites on 0.0.0.0:8080/,
    ],
    [
      "ssl without certificate source",
      `${SITE}[sites.ssl]\nenabled = true\n`,
      "sites[0].ssl",
      /neither cert_file and key_file nor auto_cert/,
    ],
    [
      "auto_cert without acme",
      `${SITE}[sites.ssl]\nenabled = true\nauto_cert = true\n`,
      "sites[0].ssl.auto_cert",
      /needs \[sites.ssl.acme\] with enabled = true/,
    ],
    [
      "acme without names",
      SITE.replace('hostname = "Example.COM"\n', "") +
      `[sites.ssl]\nenabled = true\nauto_cert = true\n[sites.ssl.acme]\nenabled = true\n`,
      "sites[0].ssl.acme",
      /ACME needs a name/,
    ],
    [
      "file log without path",
      `[logging]\noutput = "file"\n${SITE}`,
      "logging.file_path",
      /required when output = "file"/,
    ],
    [
      "invalid CIDR",
      `[server]\ntrusted_proxies = ["10.0.0.0/8", "10.0.0.0/33"]\n${SITE}`,
      "server.trusted_proxies[1]",
      /Cannot parse CIDR "10.0.0.0\/33"/,
    ],
    [
      "management port clash",
      `[management]\nenabled = true\nhost = "127.0.0.1"\nport = 8080\n${SITE}`,
      "management.port",
      /site "main" \(sites\[0\]\) listens on 0.0.0.0:8080/,
    ],
    [
      "unparsable expect_status",
      proxySite(`[sites.proxy.health_check]\nexpect_status = "ok"\n`),
      "sites[0].proxy.health_check.expect_status",
      /Cannot parse expect_status "ok"/,
    ],
    [
      "one host name on two sites of a port",
      `${SITE}[[sites]]\nname = "b"\nhostnames = ["www.example.com", "EXAMPLE.com"]\nport = 8080\nstatic_dir = "x"\n`,
      "sites[1].hostnames[1]",
      /host name "example.com" is already served by site "main" on 0.0.0.0:8080/,
    ],
    [
      "bad header name",
      `${SITE}[sites.headers]\n"Bad Header" = "x"\n`,
      'sites[0].headers."Bad Header"',
      /not a valid HTTP header name/,
    ],
  ];
  for (const [name, text, path, message] of cases) {
    it(`rejects: ${name}`, () => {
      const issue = oneIssue(text);
      expect(issue.path).toBe(path);
      expect(issue.message).toMatch(message);
      if (path !== "sites") expect(issue.line).toBeGreaterThan(0);
    });
  }

  it("allows port 0 on several sites and management, and one default per port", () => {
    const c = load(
      `[management]\nenabled = true\nport = 0\n${SITE.replace("8080", "0")}default = true
[[sites]]\nname = "b"\nport = 0\nstatic_dir = "x"\ndefault = true\n[sites.ssl]\nenabled = true\ncert_file = "c"\nkey_file = "k"\n`,
    );
    expect(c.sites.map((s) => s.port)).toEqual([0, 0]);
  });
});

describe("several errors at once", () => {
  it("lists every issue, in file order, with lines in the second site and nested tables", () => {
    const text = `[server]
grace_period = -1

[[sites]]
name = "a"
port = 80
static_dir = "a"

[[sites]]
name = "b"
hostname = "b.example.com"
port = 80
bogus = 1

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "api"
url = "http://127.0.0.1:1"

[[sites.proxy.upstreams]]
name = "api"
url = "not a url"
weight = 2

[[sites.proxy.routes]]
path = "/api/"
upstream = "apii"

[[sites.proxy.routes]]
path = "/api/"
upstream = "api"
websockets = true
`;
    const issues = issuesOf(text);
    expect(issues.map((i) => `${i.line}:${i.column} ${i.path}`)).toEqual([
      "2:1 server.grace_period",
      "13:1 sites[1].bogus",
      "24:1 sites[1].proxy.upstreams[1].url",
      "29:1 sites[1].proxy.routes[0].upstream",
      "32:1 sites[1].proxy.routes[1].path",
      "34:1 sites[1].proxy.routes[1].websockets",
    ]);
    expect(issues[5].message).toContain("did you mean `websocket`?");
  });
});

describe("loading files and objects", () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_config_test_" });
  after(() => Deno.removeSync(dir, { recursive: true }));

  it("resolves relative paths against the file's directory and sets source", async () => {
    Deno.mkdirSync(join(dir, "www"));
    Deno.writeTextFileSync(join(dir, "bws.toml"), SITE.replace('"public"', '"www"'));
    const { config, warnings } = await loadConfigFileWithWarnings(join(dir, "bws.toml"));
    expect(config.source).toBe(join(dir, "bws.toml"));
    expect(config.sites[0].staticDir).toBe(join(dir, "www"));
    expect(warnings).toEqual([]);
  });

  it("warns (without failing) when static_dir does not exist", async () => {
    Deno.writeTextFileSync(join(dir, "missing.toml"), SITE);
    const { warnings } = await loadConfigFileWithWarnings(join(dir, "missing.toml"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ path: "sites[0].static_dir", line: 5, column: 1 });
    expect(warnings[0].message).toContain("does not exist");
  });

  it("names the file when it cannot be read", async () => {
    const path = join(dir, "nope.toml");
    await expect(loadConfigFile(path)).rejects.toThrow(`Cannot read config file "${path}"`);
  });

  it("validates raw objects the same way, relative to cwd by default", () => {
    const c = configFromObject({ sites: [{ name: "s", port: 0, static_dir: "site" }] });
    expect(c.source).toBe("");
    expect(c.sites[0].staticDir).toBe(join(Deno.cwd(), "site"));
    expect(
      configFromObject({ sites: [{ name: "s", port: 0, static_dir: "x" }] }, { baseDir: "/b" })
        .sites[0].staticDir,
    ).toBe("/b/x");
    try {
      configFromObject({ sites: [{ name: "s", prot: 1, static_dir: "x" }] });
      throw new Error("accepted");
    } catch (e) {
      const issues = (e as ConfigError).issues;
      expect(issues.map((i) => i.path)).toEqual(["sites[0].prot", "sites[0].port"]);
      expect(issues[0].message).toContain("did you mean `port`?");
      expect((e as Error).message).toContain("<config>: sites[0].prot: unknown key");
    }
  });

  it("returns warnings from text too", () => {
    const r = parseConfigTextWithWarnings(SITE, { baseDir: "/nonexistent" });
    expect(r.warnings[0].path).toBe("sites[0].static_dir");
  });
});

describe("independent mistakes are all reported", () => {
  it("reports an unknown route upstream even when a member's weight is also wrong", () => {
    const issues = issuesOf(`${SITE}
[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:1"
weight = 0

[[sites.proxy.routes]]
path = "/api/"
upstream = "c"
`);
    expect(issues.map((i) => i.path)).toEqual([
      "sites[0].proxy.upstreams[0].weight",
      "sites[0].proxy.routes[0].upstream",
    ]);
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "./load.ts";
import { formatSize, summarizeConfig } from "./summary.ts";

describe("summarizeConfig", () => {
  it("lists listeners, sites, routes with members and weights, static dir, management, logging", () => {
    const c = parseConfigText(
      `[management]
enabled = true
port = 9000
[logging]
format = "json"
[[sites]]
name = "web"
hostname = "a.example"
hostnames = ["b.example"]
port = 8080
static_dir = "www"
[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "api"
url = "http://127.0.0.1:3001"
weight = 3
[[sites.proxy.upstreams]]
name = "api"
url = "http://127.0.0.1:3002"
[[sites.proxy.routes]]
path = "/api/"
upstream = "api"
strip_prefix = true
websocket = true
[[sites]]
name = "other"
hostname = "c.example"
port = 8080
static_dir = "/var/c"
default = true
[[sites]]
name = "secure"
hostname = "s.example"
port = 8443
static_dir = "/var/s"
[sites.ssl]
enabled = true
cert_file = "c.pem"
key_file = "k.pem"
`,
      { baseDir: "/etc/bws" },
    );
    const s = summarizeConfig(c);
    expect(s).toContain("listeners: 2");
    expect(s).toContain("0.0.0.0:8080 (http)");
    expect(s).toContain("0.0.0.0:8443 (https, TLS)");
    expect(s).toContain('site "web": a.example, b.example\n');
    expect(s).toContain('site "other": c.example [default]');
    expect(s).toContain('site "secure": s.example [default]');
    expect(s).toContain(
      "route /api/ → api [http://127.0.0.1:3001 (weight 3), http://127.0.0.1:3002 (weight 1)] " +
        "strip_prefix, websocket",
    );
    expect(s).toContain("static /etc/bws/www (index index.html)");
    expect(s).toContain("tls: /etc/bws/c.pem + /etc/bws/k.pem");
    expect(s).toContain("management: http://127.0.0.1:9000");
    expect(s).toContain("logging: level info, format json, access log on, to stdout");
    expect(s).toContain("compression static: zstd, br, gzip from 1KiB\n");
    expect(s).not.toContain("not active yet");
  });

  it("lists redirects, compression, the SPA fallback and error pages", () => {
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${dir}/404.html`, "<h1>404</h1>");
      const c = parseConfigText(
        `[[sites]]
name = "web"
port = 8080
static_dir = "www"
spa_fallback = "index.html"
[sites.compression]
proxy = true
algorithms = ["br", "gzip"]
min_size = "2KiB"
[sites.proxy]
enabled = true
[[sites.redirects]]
path = "/old/"
to = "https://new.example/"
[[sites.redirects]]
path = "/x"
to = "/y"
status = 302
keep_path = false
[sites.error_pages]
404 = "404.html"
"5xx" = "404.html"
`,
        { baseDir: dir },
      );
      const lines = summarizeConfig(c).split("\n").map((l) => l.trim());
      expect(lines).toContain(
        `static ${dir}/www (index index.html, spa fallback index.html)`,
      );
      expect(lines).toContain(
        "redirect /old/ → https://new.example/ (308, keep path)",
      );
      expect(lines).toContain("redirect /x → /y (302)");
      expect(lines).toContain("compression static + proxy: br, gzip from 2KiB");
      expect(lines).toContain("error pages 404, 5xx");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });

  it("formats sizes in the units the config accepts", () => {
    expect(formatSize(16 * 1024 * 1024)).toBe("16MiB");
    expect(formatSize(100_000_000)).toBe("100MB");
    expect(formatSize(1234)).toBe("1234B");
  });

  it("lists edge protection per site and route as active, and the PROXY protocol", () => {
    const c = parseConfigText(
      `[server]
trusted_proxies = ["10.0.0.0/8"]
[[sites]]
name = "app"
hostname = "app.example"
port = 8080
proxy_protocol = true
[sites.access]
deny = ["203.0.113.9"]
[sites.rate_limit]
rate = 10
burst = 20
[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "app"
url = "http://127.0.0.1:3000"
[[sites.proxy.routes]]
path = "/dash/"
upstream = "app"
[sites.proxy.routes.forward_auth]
url = "http://127.0.0.1:9091/verify"
`,
      { baseDir: "/etc/bws" },
    );
    const lines = summarizeConfig(c).split("\n").map((l) => l.trim());
    expect(lines).toContain(
      "protection: access (allow all, deny 1), rate_limit 10/s burst 20 by ip",
    );
    expect(lines).toContain("PROXY protocol from trusted proxies");
    expect(lines.some((l) => l.includes("forward_auth http://127.0.0.1:9091/verify"))).toBe(true);
    expect(lines.filter((l) => l.includes("not active yet"))).toEqual([]);
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { fileURLToPath } from "node:url";
import { loadConfigFileWithWarnings } from "./load.ts";
import { summarizeConfig } from "./summary.ts";

const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));
/** The examples this module owns (others may add more files to examples/). */
const FILES = [
  "basic.toml",
  "complete.toml",
  "edge_protection.toml",
  "high_availability.toml",
  "ssl_termination.toml",
  "snippets.toml",
];

describe("examples/", () => {
  for (const file of FILES) {
    it(`${file} loads without errors`, async () => {
      const { config } = await loadConfigFileWithWarnings(EXAMPLES + file);
      expect(config.sites.length).toBeGreaterThan(0);
      expect(summarizeConfig(config)).toContain("listeners:");
    });
  }

  it("complete.toml is read as the seed documentation means it", async () => {
    const { config } = await loadConfigFileWithWarnings(EXAMPLES + "complete.toml");
    const p = config.sites[0].proxy;
    expect(p.loadBalancing.method).toBe("weighted");
    expect(p.upstreams.map((u) => [u.name, u.weight])).toEqual([
      ["api-cluster", 2],
      ["api-cluster", 1],
      ["websocket-backend", 1],
    ]);
    expect(p.routes.map((r) => [r.path, r.upstream, r.websocket])).toEqual([
      ["/api/", "api-cluster", false],
      ["/ws", "websocket-backend", true],
    ]);
    expect(p.headers.both.add).toEqual({ "X-Gateway": "BWS" });
  });

  it("edge_protection.toml protects the site and replaces tables per route", async () => {
    const { config } = await loadConfigFileWithWarnings(EXAMPLES + "edge_protection.toml");
    const s = config.sites[0];
    expect(s.proxyProtocol).toBe(true);
    expect(s.access?.deny).toEqual(["203.0.113.9", "198.51.100.0/24"]);
    expect(s.rateLimit).toEqual({ rate: 10, burst: 20, key: "ip" });
    const [root, admin, dashboard, api] = s.proxy.routes;
    expect([root.access, root.rateLimit, root.basicAuth, root.forwardAuth]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(admin.basicAuth?.users.alice).toMatch(/^\$2y\$10\$/);
    expect(admin.access?.allow).toHaveLength(2);
    expect(dashboard.forwardAuth?.copyHeaders).toEqual(["Remote-User", "Remote-Groups"]);
    expect(api.rateLimit?.key).toBe("header:X-Api-Key");
    expect(summarizeConfig(config)).toContain("protection: access (allow all, deny 2)");
  });

  it("snippets.toml holds every partial snippet as its own site", async () => {
    const { config } = await loadConfigFileWithWarnings(EXAMPLES + "snippets.toml");
    expect(config.sites.map((s) => s.proxy.loadBalancing.method)).toEqual([
      "round_robin",
      "weighted",
      "least_connections",
      "round_robin",
      "round_robin",
      "round_robin",
      "round_robin",
    ]);
    const headers = config.sites[5].proxy.headers;
    expect(headers.both.add).toEqual({ "X-API-Gateway": "BWS", "X-Request-ID": "auto" });
    expect(headers.both.remove).toEqual(["Server", "X-Powered-By"]);
    expect(config.sites[3].proxy.routes.map((r) => r.stripPrefix)).toEqual([false, true]);
  });

  it("the complete seed examples are unchanged copies of the documentation", async () => {
    const seed = await Deno.readTextFile("/work/shared/seed/reverse-proxy.md").catch(() => null);
    if (seed === null) return; // the seed doc lives outside the repository
    const blocks = [...seed.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]);
    for (const file of ["basic.toml", "complete.toml", "ssl_termination.toml"]) {
      const text = await Deno.readTextFile(EXAMPLES + file);
      const body = text.split("\n").filter((_, i) => i >= 2).join("\n");
      expect(blocks).toContain(body);
    }
  });
});

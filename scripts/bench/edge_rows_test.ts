import { describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "../../src/config/load.ts";
import { bwsToml } from "./configs.ts";
import { EDGE_PATH, withEdgeRoute } from "./edge_rows.ts";

describe("withEdgeRoute", () => {
  const base = bwsToml({
    port: 18080,
    backendPort: 18081,
    streamPort: 18082,
    accessLogPath: "/tmp/bench-access.log",
    staticDir: "/tmp",
  });

  it("adds a copy of /api/ with an access list and a rate limit, and leaves the rest alone", () => {
    const config = parseConfigText(withEdgeRoute(base), { baseDir: "/tmp" });
    const routes = config.sites[0].proxy.routes;
    const plain = parseConfigText(base, { baseDir: "/tmp" }).sites[0].proxy.routes;
    expect(routes.length).toBe(plain.length + 1);
    const api = routes.find((r) => r.path === "/api/")!;
    const edge = routes.find((r) => r.path === EDGE_PATH)!;
    expect(edge).toMatchObject({ upstream: api.upstream, stripPrefix: api.stripPrefix });
    expect(edge.access?.allow).toContain("127.0.0.0/8");
    expect(edge.rateLimit).toMatchObject({ rate: 1_000_000, burst: 1_000_000, key: "ip" });
    for (const r of routes) if (r !== edge) expect([r.access, r.rateLimit]).toEqual([null, null]);
    expect(config.sites[0].access).toBeNull();
  });

  it("says so when the bench config has no /api/ route", () => {
    expect(() => withEdgeRoute(base.replace('path = "/api/"', 'path = "/v1/"'))).toThrow(
      /no "\/api\/" route/,
    );
  });
});

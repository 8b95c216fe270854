import { describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "../../src/config/load.ts";
import { bwsToml } from "./configs.ts";
import { withEdgeTables } from "./edge_rows.ts";

describe("withEdgeTables", () => {
  const base = bwsToml({
    port: 18080,
    backendPort: 18081,
    streamPort: 18082,
    accessLogPath: "/tmp/bench-access.log",
    staticDir: "/tmp",
  });

  it("puts an access list and a rate limit on the /api/ route only", () => {
    const config = parseConfigText(withEdgeTables(base), { baseDir: "/tmp" });
    const [api, ...others] = config.sites[0].proxy.routes;
    expect(api.path).toBe("/api/");
    expect(api.access?.allow).toContain("127.0.0.0/8");
    expect(api.rateLimit).toMatchObject({ rate: 1_000_000, burst: 1_000_000, key: "ip" });
    for (const r of others) expect([r.access, r.rateLimit]).toEqual([null, null]);
    expect(config.sites[0].access).toBeNull();
  });

  it("says so when the bench config has no /api/ route", () => {
    expect(() => withEdgeTables(base.replace('path = "/api/"', 'path = "/v1/"'))).toThrow(
      /no "\/api\/" route/,
    );
  });
});

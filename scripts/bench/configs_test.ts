import { describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "../../src/config/load.ts";
import { BENCH_HOST, bwsToml, haproxyConf, nginxProxyConf, nginxSameWorkConf } from "./configs.ts";

describe("bwsToml", () => {
  it("is a valid bws config with two sites, /api/ to the backend and a file access log", () => {
    const config = parseConfigText(
      bwsToml({
        port: 18080,
        backendPort: 18081,
        streamPort: 18082,
        accessLogPath: "/tmp/bench-access.log",
        staticDir: "/tmp",
      }),
      { baseDir: "/tmp" },
    );
    expect(config.sites.map((s) => s.hostname)).toEqual([BENCH_HOST, "static.bench.test"]);
    const api = config.sites[0];
    const route = api.proxy.routes.find((r) => r.path === "/api/")!;
    expect(api.proxy.upstreams.find((u) => u.name === route.upstream)!.url).toBe(
      "http://127.0.0.1:18081",
    );
    expect(api.proxy.headers.both.add["X-Request-ID"]).toBe("auto");
    expect(api.proxy.headers.addForwarded && api.proxy.headers.addXForwarded).toBe(true);
    expect(config.logging).toMatchObject({
      accessLog: true,
      output: "file",
      level: "info",
      filePath: "/tmp/bench-access.log",
    });
    expect(config.server.maxBodySize).toBeGreaterThan(1024 ** 3);
  });
});

describe("other proxies' configs", () => {
  it("keep upstream connections alive", () => {
    expect(nginxProxyConf("/tmp/x", 1, 2)).toMatch(/keepalive 32;[\s\S]*Connection ""/);
    expect(haproxyConf(1, 2)).toContain("http-reuse always");
  });

  it("give nginx-same-work the bws bench config's per-request work", () => {
    const conf = nginxSameWorkConf("/tmp/x", 1, 2);
    expect(conf).toMatch(/access_log \/tmp\/x\/access\.log bws buffer=64k/);
    for (const h of ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID"]) {
      expect(conf).toContain(`proxy_set_header ${h} `);
    }
    expect(conf).toContain("add_header X-Request-ID $request_id always;");
    expect(conf).toContain("add_header X-Content-Type-Options nosniff always;");
  });
});

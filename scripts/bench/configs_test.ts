import { describe, it } from "node:test";
import { expect } from "expect";
import { parseConfigText } from "../../src/config/load.ts";
import {
  BENCH_HOST,
  bwsToml,
  haproxyConf,
  nginxProxyConf,
  nginxSameWorkConf,
  nginxWebSocketConf,
  TLS_NAME,
} from "./configs.ts";

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

describe("bwsToml with TLS", () => {
  it("serves both sites over TLS on one port, the API site also as TLS_NAME", () => {
    const api = { certFile: "/tmp/a.crt", keyFile: "/tmp/a.key" };
    const other = { certFile: "/tmp/b.crt", keyFile: "/tmp/b.key" };
    const config = parseConfigText(
      bwsToml({
        port: 18443,
        backendPort: 18081,
        streamPort: 18082,
        wsPort: 18083,
        accessLogPath: "/tmp/bench-access.log",
        staticDir: "/tmp",
        tls: { api, static: other },
      }),
      { baseDir: "/tmp" },
    );
    expect(config.sites.map((s) => s.port)).toEqual([18443, 18443]);
    expect(config.sites.map((s) => [s.ssl.enabled, s.ssl.certFile])).toEqual([
      [true, api.certFile],
      [true, other.certFile],
    ]);
    expect(config.sites[0].hostnames).toContain(TLS_NAME);
    const ws = config.sites[0].proxy.routes.find((r) => r.path === "/ws")!;
    expect(ws.websocket).toBe(true);
    expect(config.sites[0].proxy.upstreams.find((u) => u.name === ws.upstream)!.url).toBe(
      "http://127.0.0.1:18083",
    );
  });
});

describe("other proxies' configs", () => {
  it("keep upstream connections alive", () => {
    expect(nginxProxyConf("/tmp/x", 1, 2)).toMatch(/keepalive 32;[\s\S]*Connection ""/);
    expect(haproxyConf(1, 2)).toContain("http-reuse always");
  });

  it("serve nginx over TLS 1.3 with a certificate per server name for SNI", () => {
    const tls = {
      api: { certFile: "/c/a.crt", keyFile: "/c/a.key" },
      static: { certFile: "/c/b.crt", keyFile: "/c/b.key" },
    };
    const conf = nginxSameWorkConf("/tmp/x", 1, 2, tls);
    expect(conf).toMatch(/listen 127\.0\.0\.1:1 ssl default_server;\s+server_name [^;]*localhost;/);
    expect(conf).toContain("ssl_certificate /c/a.crt;");
    expect(conf).toMatch(/server_name static\.bench\.test;[\s\S]*ssl_certificate \/c\/b\.crt;/);
    expect(conf.match(/ssl_protocols TLSv1\.2 TLSv1\.3;/g)).toHaveLength(2);
    expect(nginxProxyConf("/tmp/x", 1, 2, tls)).toContain("ssl_certificate_key /c/a.key;");
  });

  it("pass WebSocket upgrades on in the nginx WebSocket config", () => {
    const conf = nginxWebSocketConf("/tmp/x", 1, 2);
    expect(conf).toContain("proxy_set_header Upgrade $http_upgrade;");
    expect(conf).toContain('proxy_set_header Connection "upgrade";');
  });

  it("give nginx-same-work the bws bench config's per-request work", () => {
    const conf = nginxSameWorkConf("/tmp/x", 1, 2);
    expect(conf).toMatch(/access_log \/tmp\/x\/access\.log bws buffer=64k/);
    const upstream = [
      "X-Forwarded-For",
      "X-Forwarded-Proto",
      "X-Forwarded-Host",
      "Forwarded",
      "X-Request-ID",
    ];
    for (const h of upstream) {
      expect(conf).toContain(`proxy_set_header ${h} `);
    }
    expect(conf).toContain("add_header X-Request-ID $request_id always;");
    expect(conf).toContain("add_header X-Content-Type-Options nosniff always;");
  });
});

/**
 * The human-readable summary printed by `bws check`: listeners → sites → routes.
 *
 * @module
 */

import { maskRedisUrl } from "../cluster/redis_url.ts";
import type { Config, EdgeTables, SiteConfig } from "./types.ts";
import { resolveWorkerCount } from "../workers/worker_count.ts";

/**
 * Keys whose behaviour is not implemented yet; the summary marks them "(not active yet)".
 * Every key of the config format is active today; a key added ahead of its behaviour goes here.
 */
export const NOT_ACTIVE_YET: ReadonlySet<string> = new Set<string>([]);

const mark = (key: string) => (NOT_ACTIVE_YET.has(key) ? " (not active yet)" : "");

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Formats a byte count the way the config accepts it ("16MiB", "100MB", "123B"). */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
    [
      "GB",
      1e9,
    ],
    ["MB", 1e6],
    ["KB", 1e3],
  ];
  for (const [u, f] of units) if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  return `${bytes}B`;
}

/** Returns the multi-line summary of `config`. */
export function summarizeConfig(config: Config): string {
  const lines: string[] = [];
  if (config.source) lines.push(`config: ${config.source}`);
  lines.push(
    `server: "${config.server.name}", grace period ${config.server.gracePeriod}s, ` +
      `max body ${formatSize(config.server.maxBodySize)}` +
      (config.server.trustedProxies.length
        ? `, trusted proxies ${config.server.trustedProxies.join(", ")}`
        : "") +
      workersText(config.server.workers),
  );
  const workersNote = resolveWorkerCount(config.server.workers).note;
  if (workersNote) lines.push(`  note: ${workersNote}`);

  const listeners = new Map<string, SiteConfig[]>();
  for (const s of config.sites) {
    const key = `${hostPort(s.bind, s.port)} ${s.ssl.enabled ? "tls" : "http"}`;
    listeners.set(key, [...(listeners.get(key) ?? []), s]);
  }
  lines.push(`listeners: ${listeners.size}`);
  for (const [key, sites] of listeners) {
    const [addr, proto] = key.split(" ");
    lines.push(`  ${addr} (${proto === "tls" ? "https, TLS" : "http"})`);
    const hasDefault = sites.some((s) => s.default);
    sites.forEach((s, i) => {
      const isDefault = s.default || (!hasDefault && i === 0);
      lines.push(...siteLines(s, isDefault));
    });
  }
  const m = config.management;
  lines.push(
    m.enabled
      ? `management: http://${hostPort(m.host, m.port)}${m.apiKey ? " (X-API-Key required)" : ""}`
      : "management: off",
  );
  const c = config.cluster;
  if (c) {
    lines.push(
      `cluster: ${maskRedisUrl(c.redisUrl)}, key prefix "${c.keyPrefix}"` +
        (c.instanceName ? `, instance "${c.instanceName}"` : ""),
    );
  }
  const l = config.logging;
  lines.push(
    `logging: level ${l.level}, format ${l.format}, access log ${l.accessLog ? "on" : "off"}, ` +
      `to ${l.output === "file" ? l.filePath : l.output}`,
  );
  return lines.join("\n");
}

/** `, workers 4` / `, workers auto (2 here)`; nothing for one thread. */
function workersText(workers: number | "auto"): string {
  if (workers === 1) return "";
  if (workers !== "auto") return `, workers ${workers}`;
  return `, workers auto (${resolveWorkerCount(workers).count} here)`;
}

function siteLines(s: SiteConfig, isDefault: boolean): string[] {
  const out: string[] = [];
  const names = [s.hostname, ...s.hostnames].filter(Boolean);
  out.push(
    `    site "${s.name}": ${names.length ? names.join(", ") : "(no hostname)"}` +
      (isDefault ? " [default]" : ""),
  );
  const ssl = s.ssl;
  if (ssl.enabled) {
    if (ssl.autoCert) {
      const domains = [...new Set([...names, ...ssl.domains])].join(", ");
      out.push(
        `      tls: automatic certificate (ACME ${ssl.acme.directoryUrl}) for ${domains}` +
          mark("ssl.auto_cert"),
      );
    } else out.push(`      tls: ${ssl.certFile} + ${ssl.keyFile}`);
    if (ssl.redirectHttp) out.push(`      redirect http://:${ssl.httpPort} → https`);
  }
  if (s.proxy.enabled) {
    const p = s.proxy;
    const groups = new Map<string, string[]>();
    for (const u of p.upstreams) {
      groups.set(u.name, [...(groups.get(u.name) ?? []), `${u.url} (weight ${u.weight})`]);
    }
    for (const r of p.routes) {
      const flags = [
        r.stripPrefix ? "strip_prefix" : "",
        r.websocket ? "websocket" + mark("websocket") : "",
      ].filter(Boolean);
      out.push(
        `      route ${r.path} → ${r.upstream} [${(groups.get(r.upstream) ?? []).join(", ")}]` +
          (flags.length ? ` ${flags.join(", ")}` : ""),
      );
      const own = protection(r);
      if (own) out.push(`        protection (replaces the site's): ${own}`);
    }
    if (p.routes.length === 0) out.push("      (proxy enabled, no routes)");
    const hc = p.healthCheck;
    out.push(
      `      balancing ${p.loadBalancing.method}${mark("load_balancing")}; timeouts connect ` +
        `${p.timeout.connect}s read ${p.timeout.read}s write ${p.timeout.write}s; ` +
        (hc.enabled ? `health check ${hc.path} every ${hc.interval}s` : "no active health check") +
        mark("health_check"),
    );
  }
  if (s.staticDir) {
    out.push(
      `      static ${s.staticDir} (index ${s.indexFile}` +
        (s.spaFallback ? `, spa fallback ${s.spaFallback}` : "") + ")",
    );
  }
  const site = protection(s);
  if (site) out.push(`      protection: ${site}`);
  if (s.proxyProtocol) {
    out.push("      PROXY protocol from trusted proxies");
  }
  out.push(...webFeatureLines(s));
  return out;
}

function webFeatureLines(s: SiteConfig): string[] {
  const out: string[] = [];
  for (const r of s.redirects) {
    out.push(
      `      redirect ${r.path} → ${r.to} (${r.status}${r.keepPath ? ", keep path" : ""})`,
    );
  }
  const c = s.compression;
  const what = [c.static && s.staticDir ? "static" : "", c.proxy && s.proxy.enabled ? "proxy" : ""]
    .filter(Boolean);
  if (what.length > 0 && c.algorithms.length > 0) {
    out.push(
      `      compression ${what.join(" + ")}: ${c.algorithms.join(", ")} from ` +
        formatSize(c.minSize),
    );
  }
  const pages = Object.keys(s.errorPages);
  if (pages.length > 0) out.push(`      error pages ${pages.join(", ")}`);
  return out;
}

/** The edge-protection tables written on a site or route, in the order they run; "" if none. */
function protection(t: EdgeTables): string {
  const parts: string[] = [];
  if (t.access) {
    parts.push(
      `access (allow ${t.access.allow.length || "all"}, deny ${t.access.deny.length})`,
    );
  }
  if (t.rateLimit) {
    const r = t.rateLimit;
    parts.push(`rate_limit ${r.rate}/s burst ${r.burst} by ${r.key}`);
  }
  if (t.basicAuth) {
    const b = t.basicAuth;
    const users = Object.keys(b.users).length;
    const from = [users ? `${users} user${users === 1 ? "" : "s"}` : "", b.htpasswdFile].filter(
      Boolean,
    ).join(" + ");
    parts.push(`basic_auth "${b.realm}" (${from})`);
  }
  if (t.forwardAuth) parts.push(`forward_auth ${t.forwardAuth.url}`);
  return parts.join(", ");
}

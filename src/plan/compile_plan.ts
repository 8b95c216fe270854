/**
 * Compiles a validated Config into the immutable Plan: listeners by (bind, port), host tables,
 * site plans with route tables and upstream groups. Runs once per config (start and reload).
 *
 * @module
 */

import type {
  Config,
  HealthCheckConfig,
  PassiveHealthConfig,
  SiteConfig,
} from "../config/types.ts";
import type { ActiveHealth } from "../health/active.ts";
import type { PassiveHealth } from "../health/host_state.ts";
import { UpstreamGroup } from "../balancer/group.ts";
import { compileSiteEdge } from "../edge/edge_policy.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import type { HostRegistry } from "../health/registry.ts";
import { ProxyCompression } from "../compress/proxy_compression.ts";
import type { CompressedFileCache } from "../compress/static_cache.ts";
import { ErrorPages } from "../error_pages/error_pages.ts";
import { RedirectTable } from "../redirect/redirect_table.ts";
import { createStaticHandler } from "../static/handler.ts";
import { staticOptionsFor } from "../static/site_options.ts";
import { compileHeaderPlan } from "../proxy/header_plan.ts";
import { RouteTable } from "../proxy/route_table.ts";
import { CidrSet } from "../net/cidr.ts";
import type { UpstreamClient, UpstreamTimeouts } from "../upstream/client.ts";
import type { Logger } from "../log/types.ts";
import type {
  ClientPlan,
  HostTarget,
  ListenerPlan,
  Plan,
  ProxyPlan,
  RoutePlan,
  SitePlan,
} from "./plan_types.ts";
import { errorText } from "../log/error_text.ts";

export interface CompileDeps {
  readonly registry: HostRegistry;
  readonly logger: Logger;
  /** The upstream client (forward auth asks its service with it). */
  readonly client: UpstreamClient;
  /** Compressed small static files, kept across reloads (keys include the file's mtime). */
  readonly fileCache: CompressedFileCache;
  /** Rate-limit bucket stores; `[cluster]` shares them through Redis. @default per process */
  readonly stores?: BucketStoreFactory;
}

const ms = (seconds: number) => Math.round(seconds * 1000);

function passiveHealthOf(c: PassiveHealthConfig): PassiveHealth {
  return Object.freeze({
    enabled: c.enabled,
    maxFails: c.maxFails,
    failTimeoutMs: ms(c.failTimeout),
  });
}

function activeHealthOf(c: HealthCheckConfig): ActiveHealth {
  return Object.freeze({
    enabled: c.enabled,
    path: c.path,
    intervalMs: ms(c.interval),
    timeoutMs: ms(c.timeout),
    retries: c.retries,
    rise: c.rise,
    expectStatus: c.expectStatus,
  });
}

function compileClientPlan(config: Config): ClientPlan {
  const t = config.server.timeouts;
  const l = config.server.limits;
  return Object.freeze({
    timeouts: Object.freeze({
      headerMs: ms(t.header),
      keepAliveMs: ms(t.keepAlive),
      bodyMs: ms(t.body),
      sendMs: ms(t.send),
    }),
    tlsHandshakeMs: ms(t.tlsHandshake),
    limits: Object.freeze({ maxHeaderSize: l.maxHeaderSize, maxHeaders: l.maxHeaders }),
    maxConnections: l.maxConnections,
    maxConnectionsPerIp: l.maxConnectionsPerIp,
  });
}

/** Every name a site answers to (lower-case), hostname first. */
export function siteNames(site: SiteConfig): string[] {
  const names = [site.hostname, ...site.hostnames];
  if (site.ssl.enabled) names.push(...site.ssl.domains.map((d) => d.toLowerCase()));
  return [...new Set(names.filter((n) => n !== ""))];
}

/** Normalises a Host header value: lower-case, port and trailing dot removed. */
export function normalizeHost(host: string): string {
  // Fast path: already a lower-case name without port or trailing dot (no allocation).
  let plain = host.length > 0;
  for (let i = 0; i < host.length && plain; i++) {
    const c = host.charCodeAt(i);
    plain = c !== 58 && (c < 65 || c > 90) && c !== 91;
  }
  if (plain && host.charCodeAt(host.length - 1) !== 46) return host;
  let h = host;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.indexOf(":");
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** The last lookup: requests on a listener mostly repeat one Host (a string compare instead of
 * normalising and hashing a fresh string per request). */
let lastListener: ListenerPlan | null = null;
let lastHost = "";
let lastTarget: HostTarget | null = null;

/** Finds the target for a Host: exact name, then "*." wildcard (one label), then the fallback. */
export function lookupHost(lp: ListenerPlan, host: string): HostTarget {
  if (lp === lastListener && host === lastHost) return lastTarget!;
  const target = findHost(lp, host);
  lastListener = lp;
  lastHost = host;
  lastTarget = target;
  return target;
}

function findHost(lp: ListenerPlan, host: string): HostTarget {
  const name = normalizeHost(host);
  const exact = lp.exact.get(name);
  if (exact) return exact;
  const dot = name.indexOf(".");
  if (dot > 0) {
    const wild = lp.wildcard.get(name.slice(dot + 1));
    if (wild) return wild;
  }
  return lp.fallback;
}

function compileSite(site: SiteConfig, config: Config, deps: CompileDeps): {
  plan: SitePlan;
  groups: UpstreamGroup[];
} {
  const groups: UpstreamGroup[] = [];
  let proxy: ProxyPlan | null = null;
  const p = site.proxy;
  const upstreamTimeouts: UpstreamTimeouts = Object.freeze({
    connectMs: ms(p.timeout.connect),
    readMs: ms(p.timeout.read),
    writeMs: ms(p.timeout.write),
  });
  const edge = compileSiteEdge(site, {
    client: deps.client,
    timeouts: upstreamTimeouts,
    stores: deps.stores,
    onForwardAuthError: (err, url) =>
      deps.logger.warn("forward auth service unavailable", {
        site: site.name,
        url,
        error: errorText(err),
      }),
  });
  if (p.enabled) {
    const byName = new Map<string, UpstreamGroup>();
    const names = [...new Set(p.upstreams.map((u) => u.name))];
    const healthCheck = activeHealthOf(p.healthCheck);
    const passiveHealth = passiveHealthOf(p.passiveHealth);
    for (const name of names) {
      const group = new UpstreamGroup({
        site: site.name,
        name,
        upstreams: p.upstreams.filter((u) => u.name === name),
        method: p.loadBalancing.method,
        healthCheck,
        passiveHealth,
        registry: deps.registry,
        logger: deps.logger,
      });
      byName.set(name, group);
      groups.push(group);
    }
    const routes: { path: string; value: RoutePlan }[] = [];
    for (const [i, r] of p.routes.entries()) {
      const group = byName.get(r.upstream);
      if (!group) throw new TypeError(`Cannot route "${r.path}": unknown upstream "${r.upstream}"`);
      routes.push({
        path: r.path,
        value: Object.freeze({
          path: r.path,
          stripPrefix: r.stripPrefix,
          websocket: r.websocket,
          group,
          edge: edge.routes[i],
        }),
      });
    }
    proxy = Object.freeze({
      routes: new RouteTable(routes),
      headers: compileHeaderPlan(p.headers),
      timeouts: upstreamTimeouts,
      retry: Object.freeze({
        attempts: p.retry.attempts,
        tryDurationMs: ms(p.retry.tryDuration),
      }),
      websocket: Object.freeze({
        maxMessage: p.websocket.maxBuffered,
        idleTimeoutMs: ms(p.websocket.idleTimeout),
        pingIntervalMs: ms(p.websocket.pingInterval),
      }),
    });
  }
  const plan: SitePlan = Object.freeze({
    name: site.name,
    config: site,
    tls: site.ssl.enabled,
    proxy,
    static: site.staticDir ? createStaticHandler(staticOptionsFor(site, deps.fileCache)) : null,
    // Names lower-cased once here: the request path compares and sends them as they are.
    siteHeaders: Object.entries(site.headers).map(([n, v]) => [n.toLowerCase(), v] as const),
    maxBodySize: site.maxBodySize || config.server.maxBodySize,
    edge: edge.site,
    redirects: site.redirects.length > 0 ? new RedirectTable(site.redirects) : null,
    errorPages: Object.keys(site.errorPages).length > 0 ? new ErrorPages(site.errorPages) : null,
    proxyCompression: proxy !== null && ProxyCompression.enabled(site.compression)
      ? new ProxyCompression(site.compression)
      : null,
  });
  return { plan, groups };
}

interface ListenerDraft {
  bind: string;
  port: number;
  tls: boolean;
  entries: { names: string[]; target: HostTarget; isDefault: boolean }[];
  acmeChallenges: boolean;
  proxyProtocol: boolean;
}

/** Builds the plan. Throws TypeError on a config the validator let through but cannot run. */
export function compilePlan(config: Config, generation: number, deps: CompileDeps): Plan {
  const sites: SitePlan[] = [];
  const groups: UpstreamGroup[] = [];
  const drafts = new Map<string, ListenerDraft>();
  const draft = (bind: string, port: number, tls: boolean): ListenerDraft => {
    const key = `${bind}:${port}`;
    let d = drafts.get(key);
    if (!d) {
      d = { bind, port, tls, entries: [], acmeChallenges: false, proxyProtocol: false };
      drafts.set(key, d);
    }
    return d;
  };
  for (const site of config.sites) {
    const { plan, groups: g } = compileSite(site, config, deps);
    sites.push(plan);
    groups.push(...g);
    const d = draft(site.bind, site.port, site.ssl.enabled);
    d.proxyProtocol ||= site.proxyProtocol;
    d.entries.push({
      names: siteNames(site),
      target: { kind: "site", site: plan },
      isDefault: site.default,
    });
  }
  // TLS sites' plain HTTP ports: redirects and ACME challenges. Plain sites keep their names.
  for (const plan of sites) {
    const ssl = plan.config.ssl;
    if (!plan.tls || !(ssl.redirectHttp || ssl.autoCert)) continue;
    const d = draft(plan.config.bind, ssl.httpPort, false);
    if (d.tls) continue; // the validator reports this clash
    d.acmeChallenges ||= ssl.autoCert;
    d.entries.push({
      names: siteNames(plan.config),
      target: {
        kind: "redirect",
        redirect: { site: plan, redirect: ssl.redirectHttp, httpsPort: plan.config.port },
      },
      isDefault: false,
    });
  }
  const listeners = new Map<string, ListenerPlan>();
  for (const [key, d] of drafts) {
    const exact = new Map<string, HostTarget>();
    const wildcard = new Map<string, HostTarget>();
    for (const e of d.entries) {
      for (const name of e.names) {
        if (name.startsWith("*.")) {
          if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), e.target);
        } else if (!exact.has(name)) exact.set(name, e.target);
      }
    }
    const fallback = (d.entries.find((e) => e.isDefault) ??
      d.entries.find((e) => e.target.kind === "site") ?? d.entries[0]).target;
    listeners.set(
      key,
      Object.freeze({
        key,
        bind: d.bind,
        port: d.port,
        tls: d.tls,
        exact,
        wildcard,
        fallback,
        sites: d.entries.flatMap((e) => e.target.kind === "site" ? [e.target.site] : []),
        acmeChallenges: d.acmeChallenges,
        proxyProtocol: d.proxyProtocol,
      }),
    );
  }
  return Object.freeze({
    generation,
    config,
    listeners,
    groups,
    sites,
    trusted: new CidrSet(config.server.trustedProxies),
    logger: deps.logger,
    client: compileClientPlan(config),
    gracePeriodMs: ms(config.server.gracePeriod),
  });
}

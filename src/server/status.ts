/**
 * The JSON document served by `GET /api/status`, and the upstream rows of `GET /metrics`.
 *
 * @module
 */

import type { UpstreamSnapshot } from "../admin/types.ts";
import type { Plan } from "../plan/plan_types.ts";

export interface ListenerInfo {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly key: string;
}

/** Sockets of the upstream keep-alive pool to one origin (`UpstreamClient.stats`). */
export interface PoolInfo {
  readonly origin: string;
  readonly idle: number;
  readonly busy: number;
}

export function buildStatus(
  plan: Plan,
  listeners: readonly ListenerInfo[],
  startedAt: number,
  pool: readonly PoolInfo[] = [],
) {
  return {
    name: plan.config.server.name,
    generation: plan.generation,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    listeners: listeners.map((l) => ({
      address: `${l.hostname}:${l.port}`,
      tls: l.tls,
      sites: plan.listeners.get(l.key)?.sites.map((s) => s.name) ?? [],
    })),
    sites: plan.sites.map((s) => ({
      name: s.name,
      hostname: s.config.hostname,
      hostnames: s.config.hostnames,
      port: s.config.port,
      tls: s.tls,
      staticDir: s.config.staticDir || null,
      routes: s.config.proxy.enabled
        ? s.config.proxy.routes.map((r) => ({
          path: r.path,
          upstream: r.upstream,
          stripPrefix: r.stripPrefix,
          websocket: r.websocket,
        }))
        : [],
    })),
    upstreams: plan.groups.map((g) => ({ site: g.site, ...g.snapshot() })),
    /** Upstream connections per origin: busy ones carry an exchange, idle ones wait for reuse. */
    pool,
  };
}

/** Every upstream member of the plan, as `/metrics` reports it. */
export function upstreamMetricRows(plan: Plan): UpstreamSnapshot[] {
  return plan.groups.flatMap((g) => {
    const snap = g.snapshot();
    return snap.members.map((m) => ({
      site: g.site,
      group: snap.name,
      url: m.url,
      live: m.live,
      inFlight: m.inFlight,
      webSockets: m.webSockets,
      requests: m.requests,
      fails: m.fails,
    }));
  });
}

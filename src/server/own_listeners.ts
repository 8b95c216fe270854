/**
 * Serving a plan from this process (`server.workers` at 1): the listeners, the connection gate
 * in front of them and the HTTP/2 bridge, fed by the one {@linkcode Services} every listener
 * shares.
 *
 * @module
 */

import type { AdminRuntime } from "../admin/types.ts";
import type { Plan } from "../plan/plan_types.ts";
import { WebSocketRegistry } from "../websocket/websocket_registry.ts";
import { ConnectionGate } from "./connection_gate.ts";
import { Http2Bridge } from "./h2_bridge.ts";
import type { Services } from "./handle_request.ts";
import { ListenerSet } from "./listener_set.ts";
import type { ServerParts, Serving } from "./running_server.ts";
import { buildStatus, type ListenerInfo, upstreamMetricRows } from "./status.ts";
import type { ListeningAddress } from "./types.ts";

export class OwnListeners implements Serving {
  readonly logFields = {};
  readonly keepsRunning = "keeping the running config";
  readonly #parts: ServerParts;
  readonly #webSockets = new WebSocketRegistry();
  readonly #gate: ConnectionGate;
  readonly #bridge: Http2Bridge;
  readonly #listeners: ListenerSet;

  constructor(parts: ServerParts) {
    this.#parts = parts;
    const { client, metrics, certificates, config, log } = parts;
    const services: Services = {
      client,
      metrics,
      webSockets: this.#webSockets,
      acmeChallenge: (token) => certificates.challengeResponse(token),
    };
    const limits = config.server.limits;
    this.#gate = new ConnectionGate(limits.maxConnections, limits.maxConnectionsPerIp);
    this.#bridge = new Http2Bridge(() => log.current);
    this.#listeners = new ListenerSet(
      { services, gate: this.#gate, bridge: this.#bridge, logger: () => log.current },
      certificates,
    );
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  async apply(next: Plan, prev: Plan | null): Promise<void> {
    await this.#listeners.apply(next, prev);
    this.#gate.configure(next.client.maxConnections, next.client.maxConnectionsPerIp);
  }

  committed(): void {}

  addresses(): ListeningAddress[] {
    return [...this.#listeners.running.values()].map((l) => ({
      hostname: l.addr.hostname,
      port: l.addr.port,
      tls: l.tls,
      sites: l.lp.sites.map((s) => s.name),
    }));
  }

  #listenerInfo(): ListenerInfo[] {
    return [...this.#listeners.running.values()].map((l) => ({
      ...l.addr,
      tls: l.tls,
      key: l.lp.key,
    }));
  }

  admin(plan: () => Plan): Required<Pick<AdminRuntime, "status" | "metricsText" | "stats">> {
    const { startedAt, client, cluster, metrics } = this.#parts;
    return {
      status: () => ({
        ...buildStatus(plan(), this.#listenerInfo(), startedAt, client.stats()),
        ...(cluster ? { instances: cluster.instances() } : {}),
      }),
      metricsText: () => metrics.render(upstreamMetricRows(plan()), client.stats()),
      stats: (window, step) => metrics.stats(window, step),
    };
  }

  async stop(graceMs: number): Promise<void> {
    await this.#listeners.shutdown(graceMs);
    await this.#webSockets.closeAll(1001, "server shutting down", 2000);
    await this.#listeners.settle(100);
    await this.#bridge.shutdown();
  }

  async abort(): Promise<void> {
    await this.#listeners.shutdown(0);
    await this.#bridge.shutdown();
  }
}

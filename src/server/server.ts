/**
 * Starts and runs bws from a validated Config: listeners, plan swaps on reload, graceful
 * shutdown, the management API and certificate management.
 *
 * @module
 */

import type { Config, LogLevel } from "../config/types.ts";
import { ConfigError } from "../config/types.ts";
import { loadConfigFile } from "../config/load.ts";
import { HostRegistry } from "../health/registry.ts";
import { createLogger } from "../log/create_logger.ts";
import type { Logger } from "../log/types.ts";
import { Metrics } from "../admin/metrics.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { WebSocketRegistry } from "../websocket/websocket_registry.ts";
import { compilePlan } from "../plan/compile_plan.ts";
import { resolveWorkerCount } from "../workers/worker_count.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import type { Plan } from "../plan/plan_types.ts";
import { preflightConfig } from "./preflight.ts";
import type { Services } from "./handle_request.ts";
import { buildStatus } from "./status.ts";
import { CertificateSet } from "./certificates.ts";
import { ConnectionGate } from "./connection_gate.ts";
import { Http2Bridge } from "./h2_bridge.ts";
import { listenError, ListenerSet } from "./listener_set.ts";
import type { ListeningAddress, ReloadResult, ServerHandle } from "./types.ts";
import type { Cluster, ClusterTuning } from "../cluster/cluster.ts";
import { errorText } from "../log/error_text.ts";

export interface StartOptions {
  /** Overrides `[logging] level` (e.g. `-v`). */
  logLevel?: LogLevel;
  /** Use this logger instead of one built from `[logging]`. */
  logger?: Logger;
  /** Milliseconds between checks of each ACME certificate (tests that force renewals shorten
   *  it). @default 43_200_000 (12 h) */
  acmeCheckIntervalMs?: number;
  /** The fleet's timings for `[cluster]` (tests that kill a lock holder or wait for heartbeats
   *  shorten them). @default the production values, see {@link ClusterTuning} */
  clusterTuning?: Partial<ClusterTuning>;
}

/** Starts bws. Rejects (after closing whatever it opened) when a listener cannot start. */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<ServerHandle> {
  // server.workers > 1 (SPEC 12): a supervisor and worker threads, see src/workers/.
  const workers = resolveWorkerCount(config.server.workers);
  if (workers.count > 1) {
    const { startSupervisor } = await import("../workers/supervisor.ts");
    return await startSupervisor(config, workers.count, opts);
  }
  const startedAt = Date.now();
  const ownLogger = opts.logger === undefined;
  const makeLogger = (cfg: Config) =>
    opts.logger ?? createLogger(
      opts.logLevel ? { ...cfg.logging, level: opts.logLevel } : cfg.logging,
    );
  let logger = makeLogger(config);
  if (workers.note) logger.warn(workers.note);
  const registry = new HostRegistry();
  const metrics = new Metrics();
  const client = new UpstreamClient();
  const webSockets = new WebSocketRegistry();
  // [cluster]: loaded only when configured; never waits for Redis more than a second.
  let cluster: Cluster | null = null;
  if (config.cluster) {
    const { Cluster } = await import("../cluster/cluster.ts");
    cluster = await Cluster.start(config.cluster, () => logger, opts.clusterTuning);
  }
  const certificates = new CertificateSet(
    () => logger,
    cluster?.acme ?? null,
    opts.acmeCheckIntervalMs,
  );
  const services: Services = {
    client,
    metrics,
    webSockets,
    acmeChallenge: (token) => certificates.challengeResponse(token),
  };
  const limits = config.server.limits;
  const gate = new ConnectionGate(limits.maxConnections, limits.maxConnectionsPerIp);
  const bridge = new Http2Bridge(() => logger);
  const listeners = new ListenerSet(
    { services, gate, bridge, logger: () => logger },
    certificates,
  );
  let generation = 1;
  const fileCache = new CompressedFileCache();
  const stores = cluster?.bucketStores;
  let plan = compilePlan(config, generation, { registry, logger, client, fileCache, stores });
  let admin: { addr: { hostname: string; port: number }; shutdown(): Promise<void> } | null = null;
  let stopping: Promise<void> | null = null;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));

  async function applyPlan(next: Plan, prev: Plan | null): Promise<void> {
    await listeners.apply(next, prev);
    plan = next;
    gate.configure(next.client.maxConnections, next.client.maxConnectionsPerIp);
    metrics.setGeneration(next.generation);
    for (const g of next.groups) g.start();
    if (prev) {
      await Promise.all(prev.groups.map((g) => g.stop()));
      registry.retain(new Set(next.groups.flatMap((g) => g.keys)));
    }
    certificates.manage(next);
  }

  async function startAdmin(cfg: Config): Promise<void> {
    if (admin) {
      await admin.shutdown();
      admin = null;
    }
    if (!cfg.management.enabled) return;
    // Loaded on first use: Hono and the API cost start-up time that configs without it skip.
    const { serveAdmin } = await import("../admin/app.ts");
    try {
      admin = serveAdmin(cfg.management, {
        status: () => ({
          ...buildStatus(
            plan,
            [...listeners.running.values()].map((l) => ({
              ...l.addr,
              tls: l.tls,
              key: l.lp.key,
            })),
            startedAt,
            client.stats(),
          ),
          ...(cluster ? { instances: cluster.instances() } : {}),
        }),
        metricsText: () =>
          metrics.render(
            plan.groups.flatMap((g) => {
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
            }),
            client.stats(),
          ),
        reload: () => handle.reloadFromSource(),
        stats: (window, step) => metrics.stats(window, step),
        certificates: () => certificates.list(),
        lastReload: () => metrics.lastReload(),
      });
    } catch (err) {
      throw listenError(cfg.management.host, cfg.management.port, err);
    }
  }

  try {
    await applyPlan(plan, null);
    await startAdmin(config);
  } catch (err) {
    await listeners.shutdown(0);
    await bridge.shutdown();
    for (const g of plan.groups) await g.stop();
    await certificates.stop();
    await cluster?.close();
    client.close();
    if (ownLogger) await logger.close();
    throw err;
  }

  const onUsr1 = () => void logger.reopen();
  try {
    Deno.addSignalListener("SIGUSR1", onUsr1);
  } catch { /* not supported on this platform (Windows) */ }

  logger.info("bws started", {
    name: config.server.name,
    listeners: [...listeners.running.values()].map((l) =>
      `${l.tls ? "https" : "http"}://${l.addr.hostname}:${l.addr.port}`
    ).join(" "),
  });

  /** Validates, compiles and applies `next`; on any error the running config stays. */
  async function applyReload(next: Config): Promise<ReloadResult> {
    if (stopping) {
      return { ok: false, errors: [{ path: "", message: "server is shutting down" }] };
    }
    let nextLogger = logger;
    const managementChanged = JSON.stringify(next.management) !==
      JSON.stringify(plan.config.management);
    const loggingChanged = JSON.stringify(next.logging) !== JSON.stringify(plan.config.logging);
    try {
      if (loggingChanged && ownLogger) nextLogger = makeLogger(next);
      const nextPlan = compilePlan(next, generation + 1, {
        registry,
        logger: nextLogger,
        client,
        fileCache,
        stores,
      });
      await applyPlan(nextPlan, plan);
      if (cluster ? !cluster.sameSettings(next.cluster) : next.cluster !== null) {
        logger.warn("[cluster] changes take effect at the next start");
      }
      generation++;
      if (nextLogger !== logger) {
        const old = logger;
        logger = nextLogger;
        setTimeout(() => void old.close(), 1000);
      }
      if (managementChanged) {
        // Restart after answering the reload request that may be coming through it.
        setTimeout(
          () =>
            void startAdmin(next).catch((err) =>
              logger.error("management API failed to restart", { error: errorText(err) })
            ),
          50,
        );
      }
      if (next.server.workers !== config.server.workers) {
        logger.warn("server.workers changes take effect at the next start");
      }
      metrics.reloadSucceeded();
      logger.info("config reloaded", { generation });
      return { ok: true, generation };
    } catch (err) {
      if (nextLogger !== logger) void nextLogger.close();
      const errors = err instanceof ConfigError
        ? err.issues
        : [{ path: "", message: errorText(err) }];
      metrics.reloadFailed(errors);
      logger.error("reload failed; keeping the running config", {
        errors: errors.map((e) => `${e.path ? e.path + ": " : ""}${e.message}`).join("; "),
      });
      return { ok: false, errors };
    }
  }

  let reloads: Promise<unknown> = Promise.resolve();

  const handle: ServerHandle = {
    get addresses(): ListeningAddress[] {
      return [...listeners.running.values()].map((l) => ({
        hostname: l.addr.hostname,
        port: l.addr.port,
        tls: l.tls,
        sites: l.lp.sites.map((s) => s.name),
      }));
    },
    get managementAddress() {
      return admin ? admin.addr : null;
    },
    get generation() {
      return plan.generation;
    },
    get config() {
      return plan.config;
    },
    upstreams() {
      return plan.groups.map((g) => ({ site: g.site, ...g.snapshot() }));
    },
    reload(next: Config): Promise<ReloadResult> {
      // One at a time (SIGHUP, --watch and the API may fire together): each reload must see the
      // listeners the previous one left, or two of them start the same port.
      const run = reloads.then(() => applyReload(next));
      reloads = run.catch(() => {});
      return run;
    },
    async reloadFromSource(): Promise<ReloadResult> {
      const source = plan.config.source;
      if (!source) {
        return { ok: false, errors: [{ path: "", message: "server was not started from a file" }] };
      }
      let next: Config;
      try {
        next = await loadConfigFile(source);
        // What a start would trip over (unreadable certificates, a log directory that is gone)
        // is reported with key and line, before anything is swapped.
        const problems = await preflightConfig(next);
        if (problems.length > 0) throw new ConfigError(source, problems);
      } catch (err) {
        const errors = err instanceof ConfigError
          ? err.issues
          : [{ path: "", message: errorText(err) }];
        metrics.reloadFailed(errors);
        logger.error("reload failed; keeping the running config", {
          file: source,
          errors: errors.map((e) =>
            `${e.line ? `line ${e.line}: ` : ""}${e.path ? e.path + ": " : ""}${e.message}`
          ).join("; "),
        });
        return { ok: false, errors };
      }
      return handle.reload(next);
    },
    shutdown(): Promise<void> {
      stopping ??= (async () => {
        logger.info("shutting down", { gracePeriod: plan.config.server.gracePeriod });
        try {
          Deno.removeSignalListener("SIGUSR1", onUsr1);
        } catch { /* ignore */ }
        await listeners.shutdown(plan.gracePeriodMs);
        await webSockets.closeAll(1001, "server shutting down", 2000);
        await listeners.settle(100);
        await bridge.shutdown();
        await Promise.all(plan.groups.map((g) => g.stop()));
        await certificates.stop();
        await cluster?.close();
        if (admin) await admin.shutdown();
        client.close();
        logger.info("stopped");
        if (ownLogger) await logger.close();
        resolveFinished();
      })();
      return stopping;
    },
    finished,
  };
  return handle;
}

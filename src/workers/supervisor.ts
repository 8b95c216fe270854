/**
 * bws with `server.workers > 1` (SPEC 12): the main thread supervises, N worker threads serve.
 *
 * The supervisor loads and reloads the config, compiles its own plan for what runs once per
 * process (active health checks, whose verdicts every worker reads from shared memory; ACME and
 * the certificates; the management API; the log output), and hands the validated config to
 * the workers, each of which compiles its own plan and accepts on every listener. A reload is
 * applied to every worker or, if any fails, to none. `/api/status` and `/metrics` add every
 * worker up; a worker that dies is restarted.
 *
 * @module
 */

import { Metrics } from "../admin/metrics.ts";
import { RequestSeries, SERIES_SECONDS, sharedSeriesBuffer } from "../admin/request_series.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import { loadConfigFile } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { ConfigError } from "../config/types.ts";
import { HostTable } from "../health/host_cells.ts";
import { HostRegistry } from "../health/registry.ts";
import { createLogger } from "../log/create_logger.ts";
import { compilePlan } from "../plan/compile_plan.ts";
import type { Plan } from "../plan/plan_types.ts";
import { CertificateSet } from "../server/certificates.ts";
import { listenError } from "../server/listener_set.ts";
import { preflightConfig } from "../server/preflight.ts";
import type { StartOptions } from "../server/server.ts";
import { buildStatus } from "../server/status.ts";
import type { ListeningAddress, ReloadResult, ServerHandle } from "../server/types.ts";
import type { TlsListener } from "../tls/listener.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { mergeExpositions } from "./metrics_merge.ts";
import { supervisorFamily, workerFamilies, writeRecords } from "./worker_metrics.ts";
import type { ListenerCertificatesData, LogRecord, SupervisorMethods } from "./protocol.ts";
import { sharedBucketStores } from "./shared_bucket_store.ts";
import { SharedKeyTable } from "./shared_key_table.ts";
import { type WorkerInfo, WorkerPool } from "./worker_pool.ts";
import type { Cluster } from "../cluster/cluster.ts";

/** Shared memory for upstream members: ~330 bytes each with 2 workers; untouched pages cost
 * nothing. */
const HOST_TABLE_BYTES = 8 * 1024 * 1024;
/** Rate-limit buckets kept for the whole process. */
const BUCKET_ENTRIES = 1 << 17;
/** Client addresses with open connections each worker counts at once (per-address limit). */
const ADDRESS_ENTRIES = 1 << 16;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Starts the supervisor and `count` worker threads. Rejects (after stopping them) when a
 * listener cannot start. */
export async function startSupervisor(
  config: Config,
  count: number,
  opts: StartOptions = {},
): Promise<ServerHandle> {
  const startedAt = Date.now();
  const ownLogger = opts.logger === undefined;
  const makeLogger = (cfg: Config) =>
    opts.logger ?? createLogger(
      opts.logLevel ? { ...cfg.logging, level: opts.logLevel } : cfg.logging,
    );
  let logger = makeLogger(config);
  const hostTable = HostTable.create(count + 1, HOST_TABLE_BYTES);
  const registry = new HostRegistry(hostTable, () =>
    logger.warn(
      "shared memory for upstream state is full: new upstreams are counted per worker thread",
    ));
  const buckets = SharedKeyTable.create(BUCKET_ENTRIES);
  const addresses = Array.from({ length: count }, () => SharedKeyTable.create(ADDRESS_ENTRIES));
  const seriesBuffers = Array.from({ length: count }, () => sharedSeriesBuffer());
  const series = seriesBuffers.map((b) => new RequestSeries(SERIES_SECONDS, b));
  const metrics = new Metrics();
  const client = new UpstreamClient();
  // [cluster]: the supervisor is this instance in the fleet (ACME store, heartbeats); each
  // worker opens its own link for the rate-limit buckets.
  let cluster: Cluster | null = null;
  if (config.cluster) {
    const { Cluster } = await import("../cluster/cluster.ts");
    cluster = await Cluster.start(config.cluster, () => logger);
  }
  const certificates = new CertificateSet(() => logger, cluster?.acme ?? null);
  const fileCache = new CompressedFileCache();
  const stores = cluster?.bucketStores ?? sharedBucketStores(buckets);
  let generation = 1;
  let plan = compilePlan(config, generation, { registry, logger, client, fileCache, stores });
  let admin: { addr: { hostname: string; port: number }; shutdown(): Promise<void> } | null = null;
  let stopping: Promise<void> | null = null;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));

  const methods: SupervisorMethods = {
    log: (records: LogRecord[]) => writeRecords(logger, records),
    challenge: (token: string) => certificates.challengeResponse(token),
  };
  const pool = new WorkerPool({
    count,
    memory: (id) => ({
      hosts: hostTable.shape,
      buckets: buckets.buffer,
      addresses: addresses.map((t) => t.buffer),
      series: seriesBuffers[id - 1],
    }),
    logLevel: opts.logLevel,
    logger: () => logger,
    methods,
    // What a dead worker held goes with it: its connections and its requests in flight.
    onDeath: (id) => {
      addresses[id - 1].clear();
      hostTable.clearThread(id);
    },
  });

  /** Stand-ins for the workers' TLS listeners: ACME certificates go to every worker. */
  const tlsProxies = new Map<string, TlsListener>();
  const tlsProxy = (key: string): TlsListener => {
    let p = tlsProxies.get(key);
    if (p === undefined) {
      p = {
        addr: { hostname: "", port: 0 },
        finished: Promise.resolve(),
        shutdown: () => Promise.resolve(),
        setCertificate: (name, pair) => {
          pool.certificate(key, name, pair);
          return Promise.resolve();
        },
      };
      tlsProxies.set(key, p);
    }
    return p;
  };

  async function applyPlan(next: Plan, prev: Plan | null): Promise<void> {
    await certificates.prepare(next);
    const certs: [string, ListenerCertificatesData][] = [];
    for (const lp of next.listeners.values()) {
      if (!lp.tls) continue;
      const c = await certificates.forListener(lp, next);
      certs.push([lp.key, { pairs: [...c.map], defaultName: c.defaultName }]);
    }
    const probe = [...next.listeners.keys()].filter((key) =>
      !key.endsWith(":0") && !prev?.listeners.has(key)
    );
    await pool.apply({
      config: next.config,
      generation: next.generation,
      slots: registry.slots(),
      probe,
      certificates: certs,
    });
    // Commit: from here on nothing fails.
    plan = next;
    metrics.setGeneration(next.generation);
    for (const g of next.groups) g.start();
    if (prev) {
      await Promise.all(prev.groups.map((g) => g.stop()));
      registry.retain(new Set(next.groups.flatMap((g) => g.keys)));
    }
    for (const key of [...tlsProxies.keys()]) {
      if (next.listeners.get(key)?.tls !== true) {
        certificates.detach(key);
        tlsProxies.delete(key);
      }
    }
    for (const lp of next.listeners.values()) {
      if (lp.tls) certificates.attach(lp.key, tlsProxy(lp.key));
    }
    certificates.manage(next);
  }

  function listenerInfo() {
    return pool.bound.map((l) => ({ hostname: l.hostname, port: l.port, tls: l.tls, key: l.key }));
  }

  async function metricsText(): Promise<string> {
    const stats = await pool.stats();
    const upstreams = plan.groups.flatMap((g) => {
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
    const merged = mergeExpositions(
      metrics.render(upstreams, []),
      [...stats.map((s) => s.stats.metrics), ...pool.retired],
      supervisorFamily,
    );
    return merged + workerFamilies(pool.info(stats));
  }

  async function startAdmin(cfg: Config): Promise<void> {
    if (admin) {
      await admin.shutdown();
      admin = null;
    }
    if (!cfg.management.enabled) return;
    const { serveAdmin } = await import("../admin/app.ts");
    try {
      admin = serveAdmin(cfg.management, {
        status: async () => {
          const stats = await pool.stats();
          const pools = new Map<string, { origin: string; idle: number; busy: number }>();
          for (const { stats: s } of stats) {
            for (const p of s.pool) {
              const sum = pools.get(p.origin) ?? { origin: p.origin, idle: 0, busy: 0 };
              sum.idle += p.idle;
              sum.busy += p.busy;
              pools.set(p.origin, sum);
            }
          }
          return {
            ...buildStatus(plan, listenerInfo(), startedAt, [...pools.values()]),
            workers: pool.info(stats),
            ...(cluster ? { instances: cluster.instances() } : {}),
          };
        },
        metricsText,
        reload: () => handle.reloadFromSource(),
        stats: (window, step) => RequestSeries.sum(series).stats(window, step),
        certificates: () => certificates.list(),
        lastReload: () => metrics.lastReload(),
      });
    } catch (err) {
      throw listenError(cfg.management.host, cfg.management.port, err);
    }
  }

  try {
    await pool.start();
    await applyPlan(plan, null);
    await startAdmin(config);
  } catch (err) {
    await pool.shutdown(0);
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
  } catch { /* not supported on this platform */ }

  logger.info("bws started", {
    name: config.server.name,
    workers: count,
    listeners: pool.bound.map((l) => `${l.tls ? "https" : "http"}://${l.hostname}:${l.port}`)
      .join(" "),
  });

  /** Validates, compiles and applies `next` on every worker; on any error all keep the old. */
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
      generation++;
      if (next.server.workers !== config.server.workers) {
        logger.warn("server.workers changes take effect at the next start");
      }
      if (cluster ? !cluster.sameSettings(next.cluster) : next.cluster !== null) {
        logger.warn("[cluster] changes take effect at the next start");
      }
      if (nextLogger !== logger) {
        const old = logger;
        logger = nextLogger;
        setTimeout(() => void old.close(), 1000);
      }
      if (managementChanged) {
        setTimeout(
          () =>
            void startAdmin(next).catch((err) =>
              logger.error("management API failed to restart", { error: errorMessage(err) })
            ),
          50,
        );
      }
      metrics.reloadSucceeded();
      logger.info("config reloaded", { generation, workers: count });
      return { ok: true, generation };
    } catch (err) {
      if (nextLogger !== logger) void nextLogger.close();
      const errors = err instanceof ConfigError
        ? err.issues
        : [{ path: "", message: errorMessage(err) }];
      metrics.reloadFailed(errors);
      logger.error("reload failed; every worker keeps the running config", {
        errors: errors.map((e) => `${e.path ? e.path + ": " : ""}${e.message}`).join("; "),
      });
      return { ok: false, errors };
    }
  }

  let reloads: Promise<unknown> = Promise.resolve();

  const handle: ServerHandle & WorkerControl = {
    get addresses(): ListeningAddress[] {
      return pool.bound.map((l) => ({
        hostname: l.hostname,
        port: l.port,
        tls: l.tls,
        sites: plan.listeners.get(l.key)?.sites.map((s) => s.name) ?? [],
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
        const problems = await preflightConfig(next);
        if (problems.length > 0) throw new ConfigError(source, problems);
      } catch (err) {
        const errors = err instanceof ConfigError
          ? err.issues
          : [{ path: "", message: errorMessage(err) }];
        metrics.reloadFailed(errors);
        logger.error("reload failed; every worker keeps the running config", {
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
        logger.info("shutting down", {
          gracePeriod: plan.config.server.gracePeriod,
          workers: count,
        });
        try {
          Deno.removeSignalListener("SIGUSR1", onUsr1);
        } catch { /* ignore */ }
        await pool.shutdown(plan.gracePeriodMs);
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
    workers: () => pool.stats().then((stats) => pool.info(stats)),
    failWorker: (id: number) => pool.fail(id),
  };
  return handle;
}

/** What a supervisor's handle offers beyond {@linkcode ServerHandle} (tests, embedding). */
export interface WorkerControl {
  /** Every worker's state, as `/api/status` lists it. */
  workers(): Promise<WorkerInfo[]>;
  /** Makes worker `id` fail as a bug would (an uncaught error): it is restarted. */
  failWorker(id: number): void;
}

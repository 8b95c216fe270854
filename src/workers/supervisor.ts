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

import type { AdminRuntime } from "../admin/types.ts";
import { RequestSeries, SERIES_SECONDS, sharedSeriesBuffer } from "../admin/request_series.ts";
import type { Config } from "../config/types.ts";
import { HostTable } from "../health/host_cells.ts";
import { HostRegistry } from "../health/registry.ts";
import type { Plan } from "../plan/plan_types.ts";
import { LogOutput } from "../server/log_output.ts";
import {
  openServerParts,
  runServer,
  type ServerParts,
  type Serving,
  type StartOptions,
} from "../server/running_server.ts";
import { buildStatus, upstreamMetricRows } from "../server/status.ts";
import type { ListeningAddress, ServerHandle } from "../server/types.ts";
import type { TlsListener } from "../tls/listener.ts";
import { mergeExpositions } from "./metrics_merge.ts";
import { supervisorFamily, workerFamilies, writeRecords } from "./worker_metrics.ts";
import type { ListenerCertificatesData, LogRecord, SupervisorMethods } from "./protocol.ts";
import { sharedBucketStores } from "./shared_bucket_store.ts";
import { SharedKeyTable } from "./shared_key_table.ts";
import { type WorkerInfo, WorkerPool } from "./worker_pool.ts";

/** Shared memory for upstream members: ~330 bytes each with 2 workers; untouched pages cost
 * nothing. */
const HOST_TABLE_BYTES = 8 * 1024 * 1024;
/** Rate-limit buckets kept for the whole process. */
const BUCKET_ENTRIES = 1 << 17;
/** Client addresses with open connections each worker counts at once (per-address limit). */
const ADDRESS_ENTRIES = 1 << 16;

/** Starts the supervisor and `count` worker threads. Rejects (after stopping them) when a
 * listener cannot start. */
export async function startSupervisor(
  config: Config,
  count: number,
  opts: StartOptions = {},
): Promise<ServerHandle & WorkerControl> {
  const log = new LogOutput(config, opts);
  const hostTable = HostTable.create(count + 1, HOST_TABLE_BYTES);
  const registry = new HostRegistry(hostTable, () =>
    log.current.warn(
      "shared memory for upstream state is full: new upstreams are counted per worker thread",
    ));
  const buckets = SharedKeyTable.create(BUCKET_ENTRIES);
  // [cluster]: the supervisor is this instance in the fleet (ACME store, heartbeats); each
  // worker opens its own link for the rate-limit buckets.
  const parts = await openServerParts(config, opts, log, registry, sharedBucketStores(buckets));
  const threads = new WorkerThreads(parts, count, opts, hostTable, buckets);
  const server = await runServer(parts, threads);
  const control: WorkerControl = {
    workers: () => threads.pool.stats().then((stats) => threads.pool.info(stats)),
    failWorker: (id: number) => threads.pool.fail(id),
  };
  return Object.assign(server.handle(), control);
}

/** Serving a plan from `count` worker threads, each accepting on every listener. */
class WorkerThreads implements Serving {
  readonly logFields: { workers: number };
  readonly keepsRunning = "every worker keeps the running config";
  readonly pool: WorkerPool;
  readonly #parts: ServerParts;
  readonly #series: RequestSeries[];
  /** Stand-ins for the workers' TLS listeners: ACME certificates go to every worker. */
  readonly #tlsProxies = new Map<string, TlsListener>();

  constructor(
    parts: ServerParts,
    count: number,
    opts: StartOptions,
    hostTable: HostTable,
    buckets: SharedKeyTable,
  ) {
    this.#parts = parts;
    this.logFields = { workers: count };
    const { log, certificates } = parts;
    const addresses = Array.from({ length: count }, () => SharedKeyTable.create(ADDRESS_ENTRIES));
    const seriesBuffers = Array.from({ length: count }, () => sharedSeriesBuffer());
    this.#series = seriesBuffers.map((b) => new RequestSeries(SERIES_SECONDS, b));
    const methods: SupervisorMethods = {
      log: (records: LogRecord[]) => writeRecords(log.current, records),
      challenge: (token: string) => certificates.challengeResponse(token),
    };
    this.pool = new WorkerPool({
      count,
      memory: (id) => ({
        hosts: hostTable.shape,
        buckets: buckets.buffer,
        addresses: addresses.map((t) => t.buffer),
        series: seriesBuffers[id - 1],
      }),
      logLevel: opts.logLevel,
      // An embedding program's logger gets entries; bws's own writes lines the workers format.
      formatAccess: opts.logger === undefined,
      logger: () => log.current,
      methods,
      // What a dead worker held goes with it: its connections and its requests in flight.
      onDeath: (id) => {
        addresses[id - 1].clear();
        hostTable.clearThread(id);
      },
    });
  }

  #tlsProxy(key: string): TlsListener {
    let p = this.#tlsProxies.get(key);
    if (p === undefined) {
      p = {
        addr: { hostname: "", port: 0 },
        finished: Promise.resolve(),
        shutdown: () => Promise.resolve(),
        setCertificate: (name, pair) => {
          this.pool.certificate(key, name, pair);
          return Promise.resolve();
        },
      };
      this.#tlsProxies.set(key, p);
    }
    return p;
  }

  open(): Promise<void> {
    return this.pool.start();
  }

  async apply(next: Plan, prev: Plan | null): Promise<void> {
    const { certificates, compile } = this.#parts;
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
    await this.pool.apply({
      config: next.config,
      generation: next.generation,
      slots: compile.registry.slots(),
      probe,
      certificates: certs,
    });
  }

  committed(next: Plan): void {
    const { certificates } = this.#parts;
    for (const key of [...this.#tlsProxies.keys()]) {
      if (next.listeners.get(key)?.tls !== true) {
        certificates.detach(key);
        this.#tlsProxies.delete(key);
      }
    }
    for (const lp of next.listeners.values()) {
      if (lp.tls) certificates.attach(lp.key, this.#tlsProxy(lp.key));
    }
  }

  addresses(plan: Plan): ListeningAddress[] {
    return this.pool.bound.map((l) => ({
      hostname: l.hostname,
      port: l.port,
      tls: l.tls,
      sites: plan.listeners.get(l.key)?.sites.map((s) => s.name) ?? [],
    }));
  }

  admin(plan: () => Plan): Required<Pick<AdminRuntime, "status" | "metricsText" | "stats">> {
    const { startedAt, cluster, metrics } = this.#parts;
    const pool = this.pool;
    const series = this.#series;
    return {
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
        const listeners = pool.bound.map((l) => ({
          hostname: l.hostname,
          port: l.port,
          tls: l.tls,
          key: l.key,
        }));
        return {
          ...buildStatus(plan(), listeners, startedAt, [...pools.values()]),
          workers: pool.info(stats),
          ...(cluster ? { instances: cluster.instances() } : {}),
        };
      },
      metricsText: async () => {
        const stats = await pool.stats();
        const merged = mergeExpositions(
          metrics.render(upstreamMetricRows(plan()), []),
          [...stats.map((s) => s.stats.metrics), ...pool.retired],
          supervisorFamily,
        );
        return merged + workerFamilies(pool.info(stats));
      },
      stats: (window, step) => RequestSeries.sum(series).stats(window, step),
    };
  }

  stop(graceMs: number): Promise<void> {
    return this.pool.shutdown(graceMs);
  }

  abort(): Promise<void> {
    return this.pool.shutdown(0);
  }
}

/** What a supervisor's handle offers beyond {@linkcode ServerHandle} (tests, embedding). */
export interface WorkerControl {
  /** Every worker's state, as `/api/status` lists it. */
  workers(): Promise<WorkerInfo[]>;
  /** Makes worker `id` fail as a bug would (an uncaught error): it is restarted. */
  failWorker(id: number): void;
}

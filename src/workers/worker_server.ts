/**
 * What one worker thread runs (`server.workers`, SPEC 12): bws's front end on every listener
 * (SO_REUSEPORT, so the kernel spreads connections over the workers), serving requests from a
 * plan it compiles from the config its supervisor hands over. Upstream state, rate-limit
 * buckets and per-address connection counts are in memory shared with the other threads; the
 * supervisor runs the health checks, ACME and the management API, and writes the log.
 *
 * @module
 */

import { Metrics } from "../admin/metrics.ts";
import { RequestSeries, SERIES_SECONDS } from "../admin/request_series.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import { deepFreeze } from "../config/freeze.ts";
import type { ClusterConfig, Config } from "../config/types.ts";
import type { SharedBuckets } from "../cluster/redis_bucket_store.ts";
import type { RedisLink } from "../cluster/redis_link.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import { HostTable } from "../health/host_cells.ts";
import { alignClock } from "../health/host_state.ts";
import { HostRegistry } from "../health/registry.ts";
import { compilePlan } from "../plan/compile_plan.ts";
import type { ListenerPlan, Plan } from "../plan/plan_types.ts";
import type { PortSharing, RequestTracker } from "../server/front_listener.ts";
import { Http2Bridge } from "../server/h2_bridge.ts";
import type { Services } from "../server/handle_request.ts";
import { ListenerSet } from "../server/listener_set.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { WebSocketRegistry } from "../websocket/websocket_registry.ts";
import type {
  ApplyArgs,
  BoundListener,
  LogRecord,
  WorkerInit,
  WorkerMethods,
  WorkerStats,
} from "./protocol.ts";
import { RelayLogger } from "./relay_logger.ts";
import { sharedBucketStores } from "./shared_bucket_store.ts";
import { SharedConnectionGate } from "./shared_connection_gate.ts";
import { SharedKeyTable } from "./shared_key_table.ts";
import { WorkerCertificates } from "./worker_certificates.ts";

/** `[cluster]` deadlines, as the supervisor's (src/cluster/cluster.ts): a request waits for
 * Redis at most this long, then counts locally. */
const FLEET_REQUEST_TIMEOUT_MS = 100;
const FLEET_BACKGROUND_TIMEOUT_MS = 1000;
/** Longest wait for Redis when the worker starts. */
const FLEET_START_WAIT_MS = 1000;

/** What a worker asks of its supervisor. */
export interface SupervisorLink {
  log(records: LogRecord[]): void;
  challenge(token: string): Promise<string | null>;
}

/** Requests in progress and answered on this thread. */
class Tracker implements RequestTracker {
  inFlight = 0;
  requests = 0;
  begin(): void {
    this.inFlight++;
  }
  end(): void {
    this.inFlight--;
    this.requests++;
  }
}

/** One worker thread's server; its methods are what the supervisor calls. */
export class WorkerServer {
  readonly #init: WorkerInit;
  readonly #link: SupervisorLink;
  readonly #registry: HostRegistry;
  readonly #metrics: Metrics;
  readonly #client = new UpstreamClient();
  readonly #webSockets = new WebSocketRegistry();
  readonly #certificates = new WorkerCertificates();
  readonly #fileCache = new CompressedFileCache();
  #stores: BucketStoreFactory;
  /** `[cluster]`: this worker's Redis link and the fleet's buckets through it. */
  #fleet: { link: RedisLink; buckets: SharedBuckets } | null = null;
  readonly #gate: SharedConnectionGate;
  readonly #bridge: Http2Bridge;
  readonly #listeners: ListenerSet;
  readonly #tracker = new Tracker();
  #logger: RelayLogger | null = null;
  #plan: Plan | null = null;
  #ports = new Map<string, number>();
  #probe = new Set<string>();
  #applying: Promise<unknown> = Promise.resolve();
  #stopping: Promise<void> | null = null;

  constructor(init: WorkerInit, link: SupervisorLink) {
    alignClock(init.clockOrigin);
    this.#init = init;
    this.#link = link;
    this.#registry = new HostRegistry(HostTable.attach(init.memory.hosts, init.id));
    this.#metrics = new Metrics(new RequestSeries(SERIES_SECONDS, init.memory.series));
    this.#stores = sharedBucketStores(new SharedKeyTable(init.memory.buckets));
    this.#gate = new SharedConnectionGate(
      init.memory.addresses.map((b) => new SharedKeyTable(b)),
      init.id - 1,
      1,
      0,
    );
    this.#bridge = new Http2Bridge(() => this.#log());
    const services: Services = {
      client: this.#client,
      metrics: this.#metrics,
      webSockets: this.#webSockets,
      acmeChallenge: (token) => this.#link.challenge(token).catch(() => null),
    };
    const sharing: PortSharing = {
      port: (lp: ListenerPlan) => this.#ports.get(lp.key) ?? lp.port,
      probe: (lp: ListenerPlan) => this.#probe.has(lp.key),
    };
    this.#listeners = new ListenerSet({
      services,
      gate: this.#gate,
      bridge: this.#bridge,
      logger: () => this.#log(),
      sharing,
      tracker: this.#tracker,
    }, this.#certificates);
  }

  /** The methods the supervisor calls. */
  methods(): WorkerMethods {
    return {
      apply: (args: ApplyArgs) => this.apply(args),
      certificate: ({ key, name, pair }) => void this.#certificates.replace(key, name, pair),
      stats: () => this.stats(),
      shutdown: ({ graceMs }: { graceMs: number }) => this.shutdown(graceMs),
      ping: () => Date.now(),
      fail: () => {
        setTimeout(() => {
          throw new Error(`worker ${this.#init.id} failed on request (a test of restarts)`);
        }, 0);
      },
    };
  }

  /** Compiles `args.config` and moves the listeners to it; on any error the old plan stays. */
  apply(args: ApplyArgs): Promise<BoundListener[]> {
    const run = this.#applying.then(() => this.#apply(args));
    this.#applying = run.catch(() => {});
    return run;
  }

  async #apply(args: ApplyArgs): Promise<BoundListener[]> {
    if (this.#stopping) throw new Error("Cannot apply a config: the worker is stopping");
    const config = deepFreeze(args.config) as Config;
    const prev = this.#plan;
    // [cluster] is read at start only, as in the supervisor.
    if (prev === null && config.cluster !== null) await this.#joinFleet(config.cluster);
    const logger = this.#loggerFor(config);
    this.#registry.assign(args.slots);
    // A listener this worker keeps (or reopens, should the reload fail) keeps its port.
    const ports = new Map(args.ports);
    for (const l of this.#listeners.running.values()) {
      if (l.lp.port === 0 && !ports.has(l.lp.key)) ports.set(l.lp.key, l.addr.port);
    }
    this.#ports = ports;
    this.#probe = new Set(args.probe);
    this.#certificates.set(args.certificates);
    const next = compilePlan(config, args.generation, {
      registry: this.#registry,
      logger,
      client: this.#client,
      fileCache: this.#fileCache,
      stores: this.#stores,
    });
    try {
      await this.#listeners.apply(next, prev);
    } finally {
      this.#probe = new Set();
    }
    this.#plan = next;
    this.#gate.configure(next.client.maxConnections, next.client.maxConnectionsPerIp);
    this.#metrics.setGeneration(next.generation);
    if (prev !== null) {
      // Health checks run in the supervisor; these groups never started any.
      this.#registry.retain(new Set(next.groups.flatMap((g) => g.keys)));
      if (prev.logger !== logger) setTimeout(() => void prev.logger.close(), 1000);
    }
    this.#logger = logger;
    return [...this.#listeners.running.values()].map((l) => ({
      key: l.lp.key,
      hostname: l.addr.hostname,
      port: l.addr.port,
      tls: l.tls,
    }));
  }

  stats(): WorkerStats {
    let connections = 0;
    for (const l of this.#listeners.all()) connections += l.connections;
    const pool = this.#client.stats();
    return {
      metrics: this.#metrics.render([], pool),
      connections,
      inFlight: this.#tracker.inFlight,
      requests: this.#tracker.requests,
      pool,
    };
  }

  /** Stops accepting, lets requests finish for `graceMs`, closes WebSockets with 1001. */
  shutdown(graceMs: number): Promise<void> {
    return this.#stopping ??= (async () => {
      await this.#applying;
      await this.#listeners.shutdown(graceMs);
      await this.#webSockets.closeAll(1001, "server shutting down", 2000);
      await this.#listeners.settle(100);
      await this.#bridge.shutdown();
      this.#client.close();
      this.#fleet?.buckets.close();
      await this.#fleet?.link.close();
      this.#logger?.flush();
    })();
  }

  /**
   * Opens this worker's own Redis link for the fleet's rate-limit buckets (a link is a socket,
   * which does not cross threads): the buckets live in Redis, so the workers and the other
   * instances share them alike; with Redis away, each worker counts locally.
   */
  async #joinFleet(cluster: ClusterConfig): Promise<void> {
    const { connectRedis } = await import("../cluster/redis_link.ts");
    const { SharedBuckets } = await import("../cluster/redis_bucket_store.ts");
    const link = connectRedis(cluster.redisUrl, {
      requestTimeoutMs: FLEET_REQUEST_TIMEOUT_MS,
      backgroundTimeoutMs: FLEET_BACKGROUND_TIMEOUT_MS,
      clientName: `bws:worker-${this.#init.id}`,
    });
    await link.waitUp(FLEET_START_WAIT_MS);
    const buckets = new SharedBuckets(link, `${cluster.keyPrefix}rl:`);
    this.#fleet = { link, buckets };
    this.#stores = buckets.factory;
  }

  /** The logger of the running plan (a fresh one for a config whose logging changed). */
  #loggerFor(config: Config): RelayLogger {
    const current = this.#logger;
    if (
      current !== null && this.#plan !== null &&
      JSON.stringify(this.#plan.config.logging) === JSON.stringify(config.logging)
    ) return current;
    return new RelayLogger(
      config.logging,
      (records) => this.#link.log(records),
      this.#init.logLevel,
      this.#init.id,
      this.#init.formatAccess,
    );
  }

  #log(): RelayLogger {
    return this.#logger ??= new RelayLogger(
      { level: "info", format: "text", accessLog: false, output: "stderr", filePath: "" },
      (records) => this.#link.log(records),
      this.#init.logLevel,
      this.#init.id,
    );
  }
}

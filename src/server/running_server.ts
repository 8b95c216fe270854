/**
 * A started bws, whichever way it serves: the running plan and its generation, the swap to a
 * new plan on reload, the management API and graceful shutdown. How the plan is served, by this
 * process's own listeners (`server.ts`) or by worker threads (`workers/supervisor.ts`), is a
 * {@linkcode Serving}.
 *
 * @module
 */

import { Metrics } from "../admin/metrics.ts";
import type { AdminRuntime } from "../admin/types.ts";
import type { Cluster, ClusterTuning } from "../cluster/cluster.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import type { Config, LogLevel } from "../config/types.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import type { HostRegistry } from "../health/registry.ts";
import { errorText } from "../log/error_text.ts";
import type { Logger } from "../log/types.ts";
import { type CompileDeps, compilePlan } from "../plan/compile_plan.ts";
import type { Plan } from "../plan/plan_types.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { CertificateSet } from "./certificates.ts";
import type { LogOutput } from "./log_output.ts";
import { ManagementApi } from "./management_api.ts";
import {
  changedSections,
  issuesLogText,
  loadForReload,
  reloadIssues,
  ReloadQueue,
} from "./reload.ts";
import type { ListeningAddress, ReloadResult, ServerHandle } from "./types.ts";

/** How a plan is put into service: listeners in this process, or worker threads. */
export interface Serving {
  /** Fields added to the "bws started", "config reloaded" and "shutting down" log lines. */
  readonly logFields: Readonly<Record<string, unknown>>;
  /** What the "reload failed; …" log line says stays in service. */
  readonly keepsRunning: string;
  /** Starts what serves before the first plan is applied (worker threads). */
  open(): Promise<void>;
  /** Puts `next` into service; throws (having changed nothing that serves) to keep `prev`. */
  apply(next: Plan, prev: Plan | null): Promise<void>;
  /** Runs once `next` is committed and its groups started: nothing here may fail. */
  committed(next: Plan): void;
  /** The addresses bound for `plan`. */
  addresses(plan: Plan): ListeningAddress[];
  /** What the management API serves at `/api/status`, `/metrics` and `/api/stats`. */
  admin(plan: () => Plan): Required<Pick<AdminRuntime, "status" | "metricsText" | "stats">>;
  /** Stops accepting and drains for up to `graceMs`. */
  stop(graceMs: number): Promise<void>;
  /** Closes what {@link open} and {@link apply} started, when the start fails. */
  abort(): Promise<void>;
}

/** What both ways of serving build before the first plan. */
export interface ServerParts {
  readonly config: Config;
  readonly startedAt: number;
  readonly log: LogOutput;
  readonly metrics: Metrics;
  readonly client: UpstreamClient;
  readonly cluster: Cluster | null;
  readonly certificates: CertificateSet;
  /** What the plan compiler needs besides the logger. */
  readonly compile: Omit<CompileDeps, "logger">;
}

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

/**
 * Builds what both ways of serving share: the metrics, the upstream client, the fleet when
 * `[cluster]` is configured (loaded only then; never waits for Redis more than a second) and
 * the certificates. `localStores` keep the rate-limit buckets when there is no fleet.
 */
export async function openServerParts(
  config: Config,
  opts: StartOptions,
  log: LogOutput,
  registry: HostRegistry,
  localStores?: BucketStoreFactory,
): Promise<ServerParts> {
  const startedAt = Date.now();
  const client = new UpstreamClient();
  let cluster: Cluster | null = null;
  if (config.cluster) {
    const { Cluster } = await import("../cluster/cluster.ts");
    cluster = await Cluster.start(config.cluster, () => log.current, opts.clusterTuning);
  }
  return {
    config,
    startedAt,
    log,
    metrics: new Metrics(),
    client,
    cluster,
    certificates: new CertificateSet(
      () => log.current,
      cluster?.acme ?? null,
      opts.acmeCheckIntervalMs,
    ),
    compile: {
      registry,
      client,
      fileCache: new CompressedFileCache(),
      stores: cluster?.bucketStores ?? localStores,
    },
  };
}

/** Starts `serving` with the plan of `parts.config`. Rejects (after closing what it opened) when a
 * listener cannot start. */
export async function runServer(parts: ServerParts, serving: Serving): Promise<RunningServer> {
  const server = new RunningServer(parts, serving);
  await server.start();
  return server;
}

export class RunningServer {
  plan: Plan;
  readonly #parts: ServerParts;
  readonly #serving: Serving;
  #generation = 1;
  readonly #management = new ManagementApi();
  readonly #reloads = new ReloadQueue();
  #stopping: Promise<void> | null = null;
  readonly finished: Promise<void>;
  #resolveFinished!: () => void;
  readonly #onUsr1 = () => void this.#parts.log.current.reopen();

  constructor(parts: ServerParts, serving: Serving) {
    this.#parts = parts;
    this.#serving = serving;
    this.finished = new Promise<void>((r) => (this.#resolveFinished = r));
    this.plan = this.#compile(parts.config, this.#generation, parts.log.current);
  }

  #compile(config: Config, generation: number, logger: CompileDeps["logger"]): Plan {
    return compilePlan(config, generation, { ...this.#parts.compile, logger });
  }

  async start(): Promise<void> {
    const { config, log, certificates, cluster, client } = this.#parts;
    try {
      await this.#serving.open();
      await this.#apply(this.plan, null);
      await this.#startManagement(config);
    } catch (err) {
      await this.#serving.abort();
      for (const g of this.plan.groups) await g.stop();
      await certificates.stop();
      await cluster?.close();
      client.close();
      await log.close();
      throw err;
    }
    try {
      Deno.addSignalListener("SIGUSR1", this.#onUsr1);
    } catch { /* not supported on this platform (Windows) */ }
    log.current.info("bws started", {
      name: config.server.name,
      ...this.#serving.logFields,
      listeners: this.#serving.addresses(this.plan).map((a) =>
        `${a.tls ? "https" : "http"}://${a.hostname}:${a.port}`
      ).join(" "),
    });
  }

  /** Puts `next` into service and commits it; the groups of `prev` stop. */
  async #apply(next: Plan, prev: Plan | null): Promise<void> {
    await this.#serving.apply(next, prev);
    // Commit: from here on nothing fails.
    this.plan = next;
    this.#parts.metrics.setGeneration(next.generation);
    for (const g of next.groups) g.start();
    if (prev) {
      await Promise.all(prev.groups.map((g) => g.stop()));
      // A removed member's shared slot serves another only after the old plan's requests are
      // surely over (its grace period, and a minute for what ends late).
      this.#parts.compile.registry.retain(
        new Set(next.groups.flatMap((g) => g.keys)),
        prev.gracePeriodMs + 60_000,
      );
    }
    this.#serving.committed(next);
    this.#parts.certificates.manage(next);
  }

  #startManagement(cfg: Config): Promise<void> {
    const { metrics, certificates } = this.#parts;
    return this.#management.restart(cfg.management, {
      ...this.#serving.admin(() => this.plan),
      reload: () => this.reloadFromSource(),
      certificates: () => certificates.list(),
      lastReload: () => metrics.lastReload(),
    });
  }

  /** Swaps in `next` after the reloads already asked for; on any error the running config stays. */
  reload(next: Config): Promise<ReloadResult> {
    return this.#reloads.run(() => this.#applyReload(next));
  }

  async #applyReload(next: Config): Promise<ReloadResult> {
    if (this.#stopping) {
      return { ok: false, errors: [{ path: "", message: "server is shutting down" }] };
    }
    const { log, metrics, cluster } = this.#parts;
    const changed = changedSections(next, this.plan.config);
    const nextLogger = log.forReload(next, changed.logging);
    try {
      const nextPlan = this.#compile(next, this.#generation + 1, nextLogger);
      await this.#apply(nextPlan, this.plan);
      if (cluster ? !cluster.sameSettings(next.cluster) : next.cluster !== null) {
        log.current.warn("[cluster] changes take effect at the next start");
      }
      this.#generation++;
      log.switchTo(nextLogger);
      if (changed.management) {
        // Restart after answering the reload request that may be coming through it.
        setTimeout(
          () =>
            void this.#startManagement(next).catch((err) =>
              log.current.error("management API failed to restart", { error: errorText(err) })
            ),
          50,
        );
      }
      if (next.server.workers !== this.#parts.config.server.workers) {
        log.current.warn("server.workers changes take effect at the next start");
      }
      metrics.reloadSucceeded();
      log.current.info("config reloaded", {
        generation: this.#generation,
        ...this.#serving.logFields,
      });
      return { ok: true, generation: this.#generation };
    } catch (err) {
      log.discard(nextLogger);
      return this.#reloadFailed(err);
    }
  }

  /** Re-reads the file the server was started from, validates it and swaps it in. */
  async reloadFromSource(): Promise<ReloadResult> {
    const source = this.plan.config.source;
    if (!source) {
      return { ok: false, errors: [{ path: "", message: "server was not started from a file" }] };
    }
    let next: Config;
    try {
      next = await loadForReload(source);
    } catch (err) {
      return this.#reloadFailed(err, source);
    }
    return this.reload(next);
  }

  #reloadFailed(err: unknown, file?: string): ReloadResult {
    const errors = reloadIssues(err);
    this.#parts.metrics.reloadFailed(errors);
    this.#parts.log.current.error(`reload failed; ${this.#serving.keepsRunning}`, {
      ...(file === undefined ? {} : { file }),
      errors: issuesLogText(errors),
    });
    return { ok: false, errors };
  }

  /** Stops accepting, drains for `grace_period`, then closes everything the server opened. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      const { log, certificates, cluster, client } = this.#parts;
      log.current.info("shutting down", {
        gracePeriod: this.plan.config.server.gracePeriod,
        ...this.#serving.logFields,
      });
      try {
        Deno.removeSignalListener("SIGUSR1", this.#onUsr1);
      } catch { /* ignore */ }
      await this.#serving.stop(this.plan.gracePeriodMs);
      await Promise.all(this.plan.groups.map((g) => g.stop()));
      await certificates.stop();
      await cluster?.close();
      await this.#management.close();
      client.close();
      log.current.info("stopped");
      await log.close();
      this.#resolveFinished();
    })();
    return this.#stopping;
  }

  /** The {@linkcode ServerHandle} callers hold. */
  handle(): ServerHandle {
    // deno-lint-ignore no-this-alias
    const server = this;
    return {
      get addresses(): ListeningAddress[] {
        return server.#serving.addresses(server.plan);
      },
      get managementAddress() {
        return server.#management.address;
      },
      get generation() {
        return server.plan.generation;
      },
      get config() {
        return server.plan.config;
      },
      upstreams: () => server.plan.groups.map((g) => ({ site: g.site, ...g.snapshot() })),
      reload: (next) => server.reload(next),
      reloadFromSource: () => server.reloadFromSource(),
      shutdown: () => server.shutdown(),
      finished: server.finished,
    };
  }
}

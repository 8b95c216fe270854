/**
 * Starts bws from a validated Config. With `server.workers` at 1 the plan is served by this
 * process's own listeners (below); with more, by worker threads under a supervisor
 * (`src/workers/`). Reloads, the management API and shutdown are {@linkcode RunningServer}'s.
 *
 * @module
 */

import type { Config, LogLevel } from "../config/types.ts";
import { HostRegistry } from "../health/registry.ts";
import type { Logger } from "../log/types.ts";
import { Metrics } from "../admin/metrics.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { resolveWorkerCount } from "../workers/worker_count.ts";
import { CompressedFileCache } from "../compress/static_cache.ts";
import { CertificateSet } from "./certificates.ts";
import { LogOutput } from "./log_output.ts";
import { runServer, type ServerParts, startCluster } from "./running_server.ts";
import type { ServerHandle } from "./types.ts";
import type { ClusterTuning } from "../cluster/cluster.ts";
import { OwnListeners } from "./own_listeners.ts";

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
  // server.workers > 1: a supervisor and worker threads, see src/workers/README.md.
  const workers = resolveWorkerCount(config.server.workers);
  if (workers.count > 1) {
    const { startSupervisor } = await import("../workers/supervisor.ts");
    return await startSupervisor(config, workers.count, opts);
  }
  const startedAt = Date.now();
  const log = new LogOutput(config, opts);
  if (workers.note) log.current.warn(workers.note);
  const client = new UpstreamClient();
  const cluster = await startCluster(config, log, opts.clusterTuning);
  const parts: ServerParts = {
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
      registry: new HostRegistry(),
      client,
      fileCache: new CompressedFileCache(),
      stores: cluster?.bucketStores,
    },
  };
  const server = await runServer(parts, new OwnListeners(parts));
  return server.handle();
}

/**
 * Starts bws from a validated Config. With `server.workers` at 1 the plan is served by this
 * process's own listeners (below); with more, by worker threads under a supervisor
 * (`src/workers/`). Reloads, the management API and shutdown are {@linkcode RunningServer}'s.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { HostRegistry } from "../health/registry.ts";
import { resolveWorkerCount } from "../workers/worker_count.ts";
import { LogOutput } from "./log_output.ts";
import { OwnListeners } from "./own_listeners.ts";
import { openServerParts, runServer, type StartOptions } from "./running_server.ts";
import type { ServerHandle } from "./types.ts";

export type { StartOptions } from "./running_server.ts";

/** Starts bws. Rejects (after closing whatever it opened) when a listener cannot start. */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<ServerHandle> {
  // server.workers > 1: a supervisor and worker threads, see src/workers/README.md.
  const workers = resolveWorkerCount(config.server.workers);
  if (workers.count > 1) {
    const { startSupervisor } = await import("../workers/supervisor.ts");
    return await startSupervisor(config, workers.count, opts);
  }
  const log = new LogOutput(config, opts);
  if (workers.note) log.current.warn(workers.note);
  const parts = await openServerParts(config, opts, log, new HostRegistry());
  const server = await runServer(parts, new OwnListeners(parts));
  return server.handle();
}

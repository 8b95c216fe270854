/**
 * How many worker threads `server.workers` means on this machine: `"auto"` is one per CPU core.
 * More than one needs SO_REUSEPORT to spread connections over the threads, which only Linux
 * does; elsewhere bws runs one thread and says why.
 *
 * @module
 */

/** The worker count to run, and why it differs from the setting (when it does). */
export interface WorkerCount {
  /** 1 = no worker threads: the main thread serves, as without the setting. */
  readonly count: number;
  readonly note: string | null;
}

/**
 * @param cores CPU cores @default navigator.hardwareConcurrency
 * @param os @default Deno.build.os
 */
export function resolveWorkerCount(
  setting: number | "auto",
  cores: number = navigator.hardwareConcurrency,
  os: string = Deno.build.os,
): WorkerCount {
  const wanted = setting === "auto" ? Math.max(1, Math.floor(cores) || 1) : setting;
  if (wanted > 1 && os !== "linux") {
    return {
      count: 1,
      note: `server.workers = ${JSON.stringify(setting)} runs 1 thread on ${os}: only Linux ` +
        "spreads the connections of one port over several threads (SO_REUSEPORT)",
    };
  }
  return { count: wanted, note: null };
}

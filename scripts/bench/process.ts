/**
 * Child processes for the benchmark: each runs in its own process group (so a proxy that forks
 * workers is stopped as a whole), with stdout and stderr appended to a log file, optionally
 * pinned to CPUs.
 *
 * @module
 */

/** A started process, stopped as a whole process group. */
export interface Service {
  readonly name: string;
  readonly pid: number;
  /** File that receives the process's stdout and stderr. */
  readonly logPath: string;
  /** Resolves with the exit status once the process has ended. */
  readonly status: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM to the group, then SIGKILL after `graceMs`. Never rejects. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@linkcode startService}. */
export interface StartOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Directory for the log file. */
  readonly logDir: string;
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** CPU list to pin the process to (`taskset -c`), e.g. "1"; unpinned when absent. */
  readonly cpus?: string;
}

/**
 * `command args` run through `taskset -c cpus` when `cpus` is set. taskset execs the command,
 * so the child's pid is the command's own.
 */
export function pinned(
  cpus: string | undefined,
  command: string,
  args: readonly string[],
): { command: string; args: string[] } {
  return cpus ? { command: "taskset", args: ["-c", cpus, command, ...args] } : {
    command,
    args: [...args],
  };
}

/** Picks a free loopback TCP port (closed again before returning). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Spawns a command detached (new session and process group) with its output in a log file. */
export async function startService(options: StartOptions): Promise<Service> {
  const logPath = `${options.logDir}/${options.name.replace(/[^A-Za-z0-9_.-]/g, "_")}.log`;
  const log = await Deno.open(logPath, { create: true, append: true });
  const run = pinned(options.cpus, options.command, options.args);
  const child = new Deno.Command(run.command, {
    args: run.args,
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const writer = log.writable.getWriter();
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    try {
      for await (const chunk of stream) await writer.write(chunk);
    } catch {
      // The log is best effort.
    }
  };
  const copies = Promise.all([copy(child.stdout), copy(child.stderr)]).finally(() =>
    writer.close().catch(() => {})
  );
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  const signalGroup = (signal: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  return {
    name: options.name,
    pid: child.pid,
    logPath,
    status,
    exited: () => done,
    async stop(graceMs = 3000) {
      signalGroup("SIGTERM");
      const timedOut = await Promise.race([
        status.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), graceMs)),
      ]);
      // Workers may outlive their master: always sweep the group.
      signalGroup("SIGKILL");
      if (timedOut) await status;
      await copies;
    },
  };
}

/** Last `lines` lines of a text file, or "" when it cannot be read. */
export async function tail(path: string, lines = 20): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Polls `url` until it answers 2xx, the service exits, or `timeoutMs` passes.
 * Throws with the tail of the service's log on failure.
 */
export async function waitReady(
  service: Service,
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 20_000,
  client?: Deno.HttpClient,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (service.exited()) {
      const status = await service.status;
      throw new Error(
        `Cannot start "${service.name}": exited with code ${status.code}\n${await tail(
          service.logPath,
        )}`,
      );
    }
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000), client });
      await res.body?.cancel();
      if (res.ok) return;
      last = `status ${res.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `Cannot start "${service.name}": ${url} did not answer 2xx within ${timeoutMs} ms (${last})\n${await tail(
      service.logPath,
    )}`,
  );
}

/** Full path of an executable found on PATH (or given as an absolute path), else undefined. */
export async function which(name: string): Promise<string | undefined> {
  const dirs = name.includes("/")
    ? [""]
    : (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    const path = dir ? `${dir}/${name}` : name;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/** The services a benchmark has running, so an interrupt can stop them all. */
export class ServiceSet {
  readonly #running = new Set<Service>();

  /** Awaits a starting service and keeps it until {@linkcode ServiceSet.stop}. */
  async track(starting: Promise<Service>): Promise<Service> {
    const service = await starting;
    this.#running.add(service);
    return service;
  }

  /** Stops one service (never rejects). */
  async stop(service: Service): Promise<void> {
    await service.stop();
    this.#running.delete(service);
  }

  /** Stops every service still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#running].map((s) => s.stop()));
    this.#running.clear();
  }

  /** The running services (for printing their logs after a failure). */
  list(): Service[] {
    return [...this.#running];
  }
}

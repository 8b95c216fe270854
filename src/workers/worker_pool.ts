/**
 * The supervisor's worker threads: started, handed each config (the first worker binds first,
 * so a port-0 listener's port is known before the others bind it, and a reload that fails on
 * any worker is rolled back on all), watched, and restarted when one dies (an uncaught error,
 * or no answer to a heartbeat for a few seconds), with a growing pause when they keep dying.
 *
 * @module
 */

import type { Logger } from "../log/types.ts";
import type { CertificatePair } from "../tls/certs.ts";
import { countersOnly } from "./metrics_merge.ts";
import type {
  ApplyArgs,
  BoundListener,
  SharedMemory,
  SupervisorMethods,
  WorkerInit,
  WorkerMethods,
  WorkerStats,
} from "./protocol.ts";
import { Rpc } from "./rpc.ts";

/** The worker module (embedded by `deno compile --include`, see scripts/compile.ts). */
export const WORKER_MODULE = new URL("./worker_main.ts", import.meta.url);

/** Heartbeat period, and how long a worker may take to answer one before it is replaced. */
const HEARTBEAT_MS = 1000;
const HEARTBEAT_TIMEOUT_MS = 5000;
/** How long a new worker may take to load and say it is ready. */
const READY_TIMEOUT_MS = 30_000;
/** Pause before a restart: doubled for each death within a minute of the last, up to the cap. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 30_000;
/** How long a stats answer may take. */
const STATS_TIMEOUT_MS = 2000;

export type WorkerState = "starting" | "running" | "restarting" | "stopping" | "stopped";

/** A worker as `/api/status` shows it. */
export interface WorkerInfo {
  readonly id: number;
  readonly state: WorkerState;
  readonly inFlight: number | null;
  readonly requests: number;
  readonly connections: number | null;
  readonly restarts: number;
  readonly uptimeSeconds: number;
  /** Why it last died, "" if never. */
  readonly lastError: string;
}

/** What the pool needs from the supervisor. */
export interface PoolOptions {
  readonly count: number;
  readonly memory: (id: number) => SharedMemory;
  readonly logLevel?: WorkerInit["logLevel"];
  readonly formatAccess: WorkerInit["formatAccess"];
  readonly logger: () => Logger;
  /** Methods the workers call. */
  readonly methods: SupervisorMethods;
  /** Told when worker `id` died, before another is started in its place. */
  readonly onDeath?: (id: number) => void;
  /** @default {@link WORKER_MODULE} */
  readonly module?: URL;
}

/** One worker thread and what the supervisor knows of it. */
class Slot {
  readonly id: number;
  state: WorkerState = "starting";
  worker: Worker | null = null;
  rpc: Rpc<SupervisorMethods, WorkerMethods> | null = null;
  startedAt = performance.now();
  restarts = 0;
  lastDeath = 0;
  lastError = "";
  /** Requests answered by earlier incarnations. */
  requestsBefore = 0;
  last: WorkerStats | null = null;
  heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Settles when the current incarnation is ready (or failed to start). */
  ready: Promise<void> = Promise.resolve();

  constructor(id: number) {
    this.id = id;
  }
}

/** The worker threads of one supervisor. */
export class WorkerPool {
  readonly #opts: PoolOptions;
  readonly #slots: Slot[];
  /** The config every worker runs (a restarted one gets it). */
  #current: ApplyArgs | null = null;
  /** Port-0 listener key → the port the first worker got. */
  #ports = new Map<string, number>();
  #bound: BoundListener[] = [];
  /** Expositions of workers that died, counters only (they must not go down). */
  readonly #retired: string[] = [];
  #stopping = false;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
    this.#slots = Array.from({ length: opts.count }, (_, i) => new Slot(i + 1));
  }

  /** Starts every worker thread (no listener yet: {@linkcode apply} gives them a config). */
  async start(): Promise<void> {
    await Promise.all(this.#slots.map((s) => this.#spawn(s)));
  }

  /** The listeners the workers run (as the first worker bound them). */
  get bound(): readonly BoundListener[] {
    return this.#bound;
  }

  /**
   * Hands a config to every worker: the first one first (it binds port-0 listeners), then the
   * others. When any of them fails, those that took it go back to the previous config and
   * this rejects with the first error.
   */
  async apply(args: Omit<ApplyArgs, "ports">): Promise<void> {
    const prev = this.#current;
    const prevPorts = this.#ports;
    const [first, ...rest] = this.#slots;
    const withPorts = (ports: Map<string, number>): ApplyArgs => ({ ...args, ports: [...ports] });
    const bound = await this.#call(first, "apply", withPorts(this.#ports));
    const ports = new Map<string, number>();
    for (const l of bound) if (l.key.endsWith(":0")) ports.set(l.key, l.port);
    const results = await Promise.allSettled(
      rest.map((s) => this.#call(s, "apply", { ...withPorts(ports), probe: [] })),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) {
      if (prev !== null) {
        const back = { ...prev, probe: [], ports: [...prevPorts] };
        const done = [first, ...rest.filter((_, i) => results[i].status === "fulfilled")];
        await Promise.all(
          done.map((s) =>
            this.#call(s, "apply", back).catch((err) => this.#kill(s, `could not go back: ${err}`))
          ),
        );
      }
      throw failed.reason;
    }
    this.#ports = ports;
    this.#current = { ...withPorts(ports), probe: [] };
    this.#bound = bound;
  }

  /** Sets a certificate (obtained by ACME) on listener `key` of every worker. */
  certificate(key: string, name: string, pair: CertificatePair): void {
    if (this.#current !== null) {
      // A worker started later gets it with the config.
      const certs = this.#current.certificates.map(([k, c]) =>
        k !== key ? [k, c] as const : [k, {
          ...c,
          pairs: [...c.pairs.filter(([n]) => n !== name), [name, pair] as const],
        }] as const
      );
      this.#current = { ...this.#current, certificates: certs };
    }
    for (const s of this.#slots) s.rpc?.notify("certificate", { key, name, pair });
  }

  /** Every running worker's report (those that do not answer in time are left out). */
  async stats(): Promise<{ id: number; stats: WorkerStats }[]> {
    const out = await Promise.all(this.#slots.map(async (s) => {
      if (s.state !== "running" || s.rpc === null) return null;
      try {
        const stats = await s.rpc.call("stats", undefined, STATS_TIMEOUT_MS);
        s.last = stats;
        return { id: s.id, stats };
      } catch {
        return null;
      }
    }));
    return out.filter((x) => x !== null);
  }

  /** Expositions of workers that died (counters only). */
  get retired(): readonly string[] {
    return this.#retired;
  }

  /** Each worker's state (with `stats` from {@linkcode stats}, when it answered). */
  info(stats: readonly { id: number; stats: WorkerStats }[] = []): WorkerInfo[] {
    const now = performance.now();
    return this.#slots.map((s) => {
      const st = stats.find((x) => x.id === s.id)?.stats ?? null;
      return {
        id: s.id,
        state: s.state,
        inFlight: st?.inFlight ?? null,
        requests: s.requestsBefore + (st?.requests ?? s.last?.requests ?? 0),
        connections: st?.connections ?? null,
        restarts: s.restarts,
        uptimeSeconds: Math.round((now - s.startedAt) / 1000),
        lastError: s.lastError,
      };
    });
  }

  /** Makes worker `id` fail like a bug would (tests of restarts). */
  fail(id: number): void {
    this.#slots.find((s) => s.id === id)?.rpc?.notify("fail", undefined);
  }

  /** Drains every worker for up to `graceMs`, then ends the threads. */
  async shutdown(graceMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#slots.map(async (s) => {
      clearInterval(s.heartbeat);
      await s.ready.catch(() => {});
      s.state = "stopping";
      try {
        await s.rpc?.call("shutdown", { graceMs }, graceMs + 5000);
      } catch {
        // Gone or stuck: terminated below.
      }
      s.rpc?.close();
      s.worker?.terminate();
      s.worker = null;
      s.rpc = null;
      s.state = "stopped";
    }));
  }

  #call<K extends "apply">(
    s: Slot,
    method: K,
    args: ApplyArgs,
  ): Promise<BoundListener[]> {
    // A worker being (re)started gets the config once it is ready.
    return s.ready.catch(() => {}).then(() => {
      if (s.rpc === null) throw new Error(`Cannot configure worker ${s.id}: it is not running`);
      return s.rpc.call(method, args);
    });
  }

  /** Starts a thread for `s` and waits until it is ready and (when there is one) configured. */
  #spawn(s: Slot): Promise<void> {
    s.state = s.restarts > 0 ? "restarting" : "starting";
    s.startedAt = performance.now();
    const worker = new Worker(this.#opts.module ?? WORKER_MODULE, {
      type: "module",
      name: `bws-worker-${s.id}`,
    });
    s.worker = worker;
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      this.#died(s, worker, e.message || "uncaught error");
    });
    s.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.removeEventListener("message", onReady);
        reject(new Error(`Cannot start worker ${s.id}: not ready within ${READY_TIMEOUT_MS} ms`));
      }, READY_TIMEOUT_MS);
      const onReady = (e: MessageEvent) => {
        if ((e.data as { type?: string })?.type !== "ready") return;
        clearTimeout(timer);
        worker.removeEventListener("message", onReady);
        resolve();
      };
      worker.addEventListener("message", onReady);
    }).then(async () => {
      if (s.worker !== worker) return;
      s.rpc = new Rpc<SupervisorMethods, WorkerMethods>(worker, this.#opts.methods);
      if (this.#current !== null) await s.rpc.call("apply", this.#current);
      s.state = "running";
      s.heartbeat = setInterval(() => this.#beat(s, worker), HEARTBEAT_MS);
    });
    const init: WorkerInit = {
      type: "init",
      id: s.id,
      clockOrigin: performance.timeOrigin,
      memory: this.#opts.memory(s.id),
      logLevel: this.#opts.logLevel,
      formatAccess: this.#opts.formatAccess,
    };
    worker.postMessage(init);
    return s.ready;
  }

  /** A heartbeat asks for the worker's stats: what it counted is kept should it die. */
  #beat(s: Slot, worker: Worker): void {
    if (s.worker !== worker || s.rpc === null || this.#stopping) return;
    s.rpc.call("stats", undefined, HEARTBEAT_TIMEOUT_MS).then((stats) => {
      if (s.worker === worker) s.last = stats;
    }, () => {
      if (s.worker === worker && !this.#stopping) {
        this.#died(s, worker, `no answer to a heartbeat within ${HEARTBEAT_TIMEOUT_MS} ms`);
      }
    });
  }

  #kill(s: Slot, why: string): void {
    if (s.worker !== null) this.#died(s, s.worker, why);
  }

  /** Ends what is left of a dead worker and starts another in its place. */
  #died(s: Slot, worker: Worker, why: string): void {
    if (s.worker !== worker) return;
    clearInterval(s.heartbeat);
    s.rpc?.close(`worker ${s.id} died`);
    s.rpc = null;
    s.worker = null;
    worker.terminate();
    this.#opts.onDeath?.(s.id);
    if (s.last !== null) {
      s.requestsBefore += s.last.requests;
      this.#retired.push(countersOnly(s.last.metrics));
      s.last = null;
    }
    s.lastError = why;
    if (this.#stopping) {
      s.state = "stopped";
      return;
    }
    const now = performance.now();
    const quick = s.lastDeath > 0 && now - s.lastDeath < 60_000;
    s.lastDeath = now;
    s.restarts++;
    const pause = quick
      ? Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(s.restarts, 20))
      : RESTART_MIN_MS;
    s.state = "restarting";
    this.#opts.logger().error("worker died; restarting it", {
      worker: s.id,
      error: why,
      restarts: s.restarts,
      inMs: Math.round(pause),
    });
    setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(s).then(
        () => this.#opts.logger().info("worker restarted", { worker: s.id }),
        (err) => this.#died(s, s.worker ?? worker, `restart failed: ${(err as Error).message}`),
      );
    }, pause);
  }
}

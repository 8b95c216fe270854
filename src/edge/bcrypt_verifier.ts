/**
 * Checks a password against a bcrypt hash without blocking the thread that serves requests.
 *
 * The package is `bcryptjs` (pure JavaScript: it loads in `deno run`, `deno test` and a
 * `deno compile`d binary on every target, needs no FFI permission; measured here at ~64 ms per
 * check at cost 10 and ~2.1 ms at cost 5, within 10-25% of the native bindings). Its "async"
 * API still runs on the calling thread (a cost-10 check stalled the event loop for 64 ms per
 * check), so the checks run in a worker thread: started on first use, stopped after a while
 * without work, and with a bounded queue so a flood of wrong passwords is refused quickly
 * instead of making every later login wait.
 *
 * @module
 */

import bcrypt from "bcryptjs";

/** Checks passwords against bcrypt hashes. */
export interface BcryptVerifier {
  /**
   * Resolves true when `password` matches `hash`, false when not (or when the hash cannot be
   * used). Rejects with {@link VerifierBusyError} when too many checks are already waiting.
   */
  verify(password: string, hash: string): Promise<boolean>;
}

/** Too many checks are queued: answer 503 and let the client retry. */
export class VerifierBusyError extends Error {
  constructor(pending: number) {
    super(`Cannot check a password now: ${pending} checks are already waiting`);
    this.name = "VerifierBusyError";
  }
}

/** Options of {@link WorkerBcryptVerifier}. */
export interface WorkerBcryptVerifierOptions {
  /** Checks waiting or running at once; more are refused. @default 64 */
  readonly maxPending?: number;
  /** ms without a check after which the worker thread is stopped. @default 30_000 */
  readonly idleMs?: number;
}

interface Pending {
  readonly resolve: (ok: boolean) => void;
  readonly reject: (err: Error) => void;
}

const WORKER_URL = new URL("./bcrypt_worker.ts", import.meta.url).href;

/** Runs bcrypt checks in one worker thread. */
export class WorkerBcryptVerifier implements BcryptVerifier {
  readonly #maxPending: number;
  readonly #idleMs: number;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: WorkerBcryptVerifierOptions = {}) {
    this.#maxPending = opts.maxPending ?? 64;
    this.#idleMs = opts.idleMs ?? 30_000;
  }

  /** Checks waiting or running. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether the worker thread is running. */
  get running(): boolean {
    return this.#worker !== null;
  }

  verify(password: string, hash: string): Promise<boolean> {
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(new VerifierBusyError(this.#pending.size));
    }
    const worker = this.#ensureWorker();
    const id = this.#nextId++;
    const result = new Promise<boolean>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    worker.postMessage({ id, password, hash });
    return result;
  }

  /** Stops the worker thread; waiting checks reject. The next check starts a new one. */
  close(): void {
    this.#stop(new Error("Cannot check a password: the verifier was closed"));
  }

  #ensureWorker(): Worker {
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(WORKER_URL, { type: "module", name: "bws-bcrypt" });
    worker.onmessage = (e: MessageEvent<{ id: number; ok?: boolean; error?: string }>) => {
      const p = this.#pending.get(e.data.id);
      if (p === undefined) return;
      this.#pending.delete(e.data.id);
      // A hash bcrypt cannot use (or a password it refuses) is a failed check, not a crash.
      p.resolve(e.data.ok === true);
      if (this.#pending.size === 0) this.#armIdle();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#stop(new Error(`Cannot check a password: the bcrypt worker failed: ${e.message}`));
    };
    this.#worker = worker;
    return worker;
  }

  #armIdle(): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending.size === 0) this.#stop(null);
    }, this.#idleMs);
  }

  #stop(reason: Error | null): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#worker?.terminate();
    this.#worker = null;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(reason ?? new Error("Cannot check a password: stopped"));
  }
}

/** Runs bcrypt checks on the calling thread (for tools and tests; blocks while it runs). */
export class InlineBcryptVerifier implements BcryptVerifier {
  verify(password: string, hash: string): Promise<boolean> {
    try {
      return Promise.resolve(bcrypt.compareSync(password, hash));
    } catch {
      return Promise.resolve(false);
    }
  }
}

let shared: WorkerBcryptVerifier | null = null;

/** The process's verifier (one worker thread for every site, across reloads). */
export function sharedBcryptVerifier(): WorkerBcryptVerifier {
  return shared ??= new WorkerBcryptVerifier();
}

/**
 * Calls between the supervisor and a worker thread over the worker's message channel: each side
 * serves some methods and calls the other's. A call is `{ rpc: "call", id, method, arg }`, its
 * answer `{ rpc: "reply", id, ok, value | error }`; a notification has no id and no answer.
 * Arguments and results are structured-cloned.
 *
 * @module
 */

/** Methods one side serves: one argument, a value or a promise back. */
// deno-lint-ignore no-explicit-any
export type Methods = { [name: string]: (arg: any) => unknown };

/** The message channel of a `Worker` (supervisor side) or of `self` (worker side). */
export interface Endpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (e: MessageEvent) => void): void;
  removeEventListener(type: "message", listener: (e: MessageEvent) => void): void;
}

type Arg<M extends Methods, K extends keyof M> = Parameters<M[K]>[0];
type Result<M extends Methods, K extends keyof M> = Awaited<ReturnType<M[K]>>;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The remote side did not answer, or went away. */
export class RpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcError";
  }
}

/** One side of the channel: serves `Local`, calls `Remote`. */
export class Rpc<Local extends Methods, Remote extends Methods> {
  readonly #endpoint: Endpoint;
  readonly #handlers: Local;
  readonly #pending = new Map<number, Pending>();
  readonly #onMessage = (e: MessageEvent) => void this.#receive(e.data);
  #nextId = 1;
  #closed = false;

  constructor(endpoint: Endpoint, handlers: Local) {
    this.#endpoint = endpoint;
    this.#handlers = handlers;
    endpoint.addEventListener("message", this.#onMessage);
  }

  /** Calls `method` on the other side; rejects after `timeoutMs` (0 = never) or on close. */
  call<K extends keyof Remote & string>(
    method: K,
    arg: Arg<Remote, K>,
    timeoutMs = 0,
  ): Promise<Result<Remote, K>> {
    if (this.#closed) return Promise.reject(new RpcError(`Cannot call "${method}": closed`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          this.#pending.delete(id);
          reject(new RpcError(`Cannot call "${method}": no answer within ${timeoutMs} ms`));
        }, timeoutMs)
        : undefined;
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#endpoint.postMessage({ rpc: "call", id, method, arg });
    });
  }

  /** Calls `method` on the other side without waiting for (or getting) an answer. */
  notify<K extends keyof Remote & string>(method: K, arg: Arg<Remote, K>): void {
    if (!this.#closed) this.#endpoint.postMessage({ rpc: "call", id: 0, method, arg });
  }

  /** Stops listening; calls still waiting reject. */
  close(reason = "the other side is gone"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#endpoint.removeEventListener("message", this.#onMessage);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RpcError(reason));
    }
    this.#pending.clear();
  }

  async #receive(msg: unknown): Promise<void> {
    if (typeof msg !== "object" || msg === null) return;
    const m = msg as { rpc?: string; id: number; method: string; arg: unknown };
    if (m.rpc === "reply") {
      const r = msg as { id: number; ok: boolean; value: unknown; error: string };
      const p = this.#pending.get(r.id);
      if (p === undefined) return;
      this.#pending.delete(r.id);
      clearTimeout(p.timer);
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(r.error));
      return;
    }
    if (m.rpc !== "call") return;
    const handler = Object.hasOwn(this.#handlers, m.method) ? this.#handlers[m.method] : undefined;
    let reply: { rpc: "reply"; id: number; ok: boolean; value?: unknown; error?: string };
    try {
      if (handler === undefined) throw new Error(`Cannot call "${m.method}": no such method`);
      reply = { rpc: "reply", id: m.id, ok: true, value: await handler(m.arg) };
    } catch (err) {
      reply = {
        rpc: "reply",
        id: m.id,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
      };
    }
    if (m.id !== 0 && !this.#closed) this.#endpoint.postMessage(reply);
  }
}

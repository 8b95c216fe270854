/**
 * What can end a proxied request before its upstream answers: the client leaving, or the grace
 * period of its listener running out (after a reload removed it, or on shutdown).
 *
 * As an {@link AbortSource} it costs a field write per subscription. On bws's own HTTP/1.1
 * connections the listener's cut reaches the request itself (`ClientConnection.cut`); requests
 * from the HTTP/2 bridge also listen on the cut signal.
 *
 * @module
 */

import type { HttpRequest } from "../http1/types.ts";
import type { AbortSource } from "../net/abort_source.ts";

/** The abort of one proxied request. */
export class RequestAbort implements AbortSource {
  readonly #req: HttpRequest;
  readonly #cut: AbortSignal;
  /** The cut does not reach the request through its connection (HTTP/2 bridge). */
  readonly #listenToCut: boolean;
  #signal: AbortSignal | undefined = undefined;
  #fn: (() => void) | null = null;

  /** `cut` aborts when the listener's grace period is over. */
  constructor(req: HttpRequest, cut: AbortSignal, cutReachesRequest: boolean) {
    this.#req = req;
    this.#cut = cut;
    this.#listenToCut = !cutReachesRequest;
  }

  /** Aborts when the client leaves or the listener's grace period is over (built on first use;
   * only the try_duration wait needs it). */
  get signal(): AbortSignal {
    return this.#signal ??= AbortSignal.any([this.#req.signal, this.#cut]);
  }

  get aborted(): boolean {
    return this.#req.aborted || this.#cut.aborted;
  }

  onAbort(fn: (() => void) | null): void {
    if (!this.#listenToCut) {
      this.#req.onAbort(fn);
      return;
    }
    if (this.#fn !== null) this.#cut.removeEventListener("abort", this.#run);
    this.#fn = fn;
    this.#req.onAbort(fn === null ? null : this.#run);
    if (fn !== null) {
      if (this.#cut.aborted) this.#run();
      else this.#cut.addEventListener("abort", this.#run);
    }
  }

  #run = (): void => {
    const fn = this.#fn;
    if (fn === null) return;
    this.#fn = null;
    this.#cut.removeEventListener("abort", this.#run);
    this.#req.onAbort(null);
    fn();
  };

  /** The request was ended by its listener's grace period, not by the client. */
  get cutShort(): boolean {
    return this.#cut.aborted;
  }

  /** The client went away (no signal is built to tell). */
  get clientGone(): boolean {
    return this.#req.clientGone;
  }
}

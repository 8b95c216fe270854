/**
 * What can end a proxied request before its upstream answers: the client leaving, or the grace
 * period of its listener running out (after a reload removed it, or on shutdown).
 *
 * The combined signal is built only when something needs it (a dial, an exchange running longer
 * than a few ms, a try_duration wait): building the request's signal and combining signals
 * allocate, which most requests never need.
 *
 * @module
 */

import type { HttpRequest } from "../http1/types.ts";

/** The lazily combined abort signal of one request. */
export class RequestAbort {
  readonly #req: HttpRequest;
  readonly #cut: AbortSignal;
  #signal: AbortSignal | undefined = undefined;

  /** `cut` aborts when the listener's grace period is over. */
  constructor(req: HttpRequest, cut: AbortSignal) {
    this.#req = req;
    this.#cut = cut;
  }

  /** Aborts when the client leaves or the listener's grace period is over. */
  get signal(): AbortSignal {
    return this.#signal ??= AbortSignal.any([this.#req.signal, this.#cut]);
  }

  /** The request was ended by its listener's grace period, not by the client. */
  get cutShort(): boolean {
    return this.#cut.aborted;
  }

  /** The client went away (no signal is built to tell). */
  get clientGone(): boolean {
    return this.#req.clientGone;
  }
}

/**
 * What can end a proxied request before its upstream answers: the client leaving, or the grace
 * period of its listener running out (after a reload removed it, or on shutdown).
 *
 * The combined signal is built only when something needs it (a dial, an exchange running longer
 * than a few ms, a try_duration wait): reading a Deno.serve request's `signal` starts a cancel
 * watch, and combining signals allocates, which most requests never need.
 *
 * @module
 */

/** The lazily combined abort signal of one request. */
export class RequestAbort {
  readonly #req: Request;
  readonly #cut: AbortSignal;
  #signal: AbortSignal | undefined = undefined;

  /** `cut` aborts when the listener's grace period is over. */
  constructor(req: Request, cut: AbortSignal) {
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
}

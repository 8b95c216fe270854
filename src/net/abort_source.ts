/**
 * What can end an upstream exchange early, as one callback slot instead of an AbortSignal: the
 * client leaving, or its listener's grace period running out. Subscribing is a field write, so
 * every exchange can listen for the whole of its life (an AbortSignal listener per request, or
 * building the signal at all, costs several times more).
 *
 * @module
 */

/** A source of one abort: the owner calls `fn` once when it happens. */
export interface AbortSource {
  /** Already aborted. */
  readonly aborted: boolean;
  /**
   * Sets the one callback to run when the source aborts (at once when it already has); `null`
   * clears it. A later call replaces the earlier callback.
   */
  onAbort(fn: (() => void) | null): void;
}

/** An AbortSignal as an {@link AbortSource} (for callers that have a signal: tests, ACME). */
export class SignalAbortSource implements AbortSource {
  readonly #signal: AbortSignal;
  #fn: (() => void) | null = null;
  #listening = false;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
  }

  get aborted(): boolean {
    return this.#signal.aborted;
  }

  onAbort(fn: (() => void) | null): void {
    this.#fn = fn;
    if (fn === null) {
      if (this.#listening) this.#signal.removeEventListener("abort", this.#run);
      this.#listening = false;
      return;
    }
    if (this.#signal.aborted) {
      this.#fn = null;
      fn();
      return;
    }
    if (!this.#listening) {
      this.#listening = true;
      this.#signal.addEventListener("abort", this.#run);
    }
  }

  #run = (): void => {
    const fn = this.#fn;
    this.#fn = null;
    this.#listening = false;
    fn?.();
  };
}

/** `signal` as an {@link AbortSource}, or the source itself. */
export function toAbortSource(signal: AbortSignal | AbortSource): AbortSource {
  return signal instanceof AbortSignal ? new SignalAbortSource(signal) : signal;
}

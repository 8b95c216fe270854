/**
 * One coarse ticker for every connection's timeout. A connection states its next deadline by
 * writing a number (`Date.now() + ms`, or 0 for none); the ticker calls `expire()` on those whose
 * deadline has passed. Setting a deadline costs a field write, where a `setTimeout` per phase and
 * per request would cost a timer allocation and a clear each time (tens of thousands per second
 * on a busy port). Timeouts fire up to one tick late.
 *
 * @module
 */

/** Something with a deadline. */
export interface Timed {
  /** Epoch ms after which `expire()` is called; 0 = no deadline. */
  deadline: number;
  /** Called once per passed deadline (reset `deadline` or close). Must not throw. */
  expire(now: number): void;
}

/** Milliseconds between two checks: the most a timeout fires late. */
export const TICK_MS = 250;

let cachedNow = Date.now();
/** `Date.now() - performance.now()` as of the last tick: wall time from a monotonic reading. */
let wallOffset = cachedNow - performance.now();
/** Tickers running (the cached clock is only kept up to date while one runs). */
let ticking = 0;

/**
 * `Date.now()` as of the last tick (or later): for deadlines set on every read and write, where a
 * clock read per I/O would cost more than the timeout is worth. Add {@link TICK_MS} to a deadline
 * built on it so it never fires early. Without a running ticker it is the real clock.
 */
export function coarseNow(): number {
  return ticking > 0 ? cachedNow : Date.now();
}

/**
 * The wall-clock time (epoch ms) of `mono`, a `performance.now()` reading taken just now: one
 * clock read per request instead of two. The offset between the clocks is taken again every
 * tick, so a step of the system clock shows within a tick. Without a running ticker it reads
 * the real clock.
 */
export function wallTime(mono: number): number {
  return ticking > 0 ? mono + wallOffset : Date.now();
}

/** A set of timed things checked every {@link TICK_MS}. The ticker runs only while non-empty. */
export class Deadlines {
  readonly #items = new Set<Timed>();
  #ticker: ReturnType<typeof setInterval> | undefined = undefined;
  readonly #tickMs: number;

  constructor(tickMs = TICK_MS) {
    this.#tickMs = tickMs;
  }

  /** Number of items watched. */
  get size(): number {
    return this.#items.size;
  }

  add(item: Timed): void {
    this.#items.add(item);
    cachedNow = Date.now();
    wallOffset = cachedNow - performance.now();
    if (this.#ticker === undefined) {
      ticking++;
      this.#ticker = setInterval(this.#tick, this.#tickMs);
      // The listeners keep the process alive; the ticker alone must not.
      Deno.unrefTimer(this.#ticker);
    }
  }

  delete(item: Timed): void {
    this.#items.delete(item);
    if (this.#items.size === 0 && this.#ticker !== undefined) {
      ticking--;
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }

  #tick = (): void => {
    const now = Date.now();
    cachedNow = now;
    wallOffset = now - performance.now();
    for (const item of this.#items) {
      const d = item.deadline;
      if (d !== 0 && now >= d) {
        item.deadline = 0;
        try {
          item.expire(now);
        } catch {
          // an expire() must not stop the others
        }
      }
    }
  };
}

/** The process-wide instance used by client connections. */
export const deadlines: Deadlines = new Deadlines();

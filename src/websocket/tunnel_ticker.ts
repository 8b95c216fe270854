/**
 * One coarse timer for the idle and ping checks of every open tunnel, instead of a timer per
 * tunnel and a clock read per byte: each tick reads the clock once and lets every member compare
 * its byte counters with what it saw on the previous tick.
 *
 * @module
 */

/** Something checked on every tick. */
export interface TickMember {
  /** `now` is `performance.now()` of this tick. Must not throw. */
  tick(now: number): void;
}

/** Ticks are at most this far apart, and at least this close (ms). */
const MAX_TICK_MS = 1000;
const MIN_TICK_MS = 10;

/**
 * Ticks every member at a quarter of the shortest period any member asked for (within
 * 10 ms-1 s), so a check fires between 1 and 1.25 periods after the last activity. The timer
 * exists only while there are members and never keeps the process alive on its own.
 */
export class Ticker {
  readonly #members = new Set<TickMember>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #everyMs = MAX_TICK_MS;

  /** Number of members. */
  get size(): number {
    return this.#members.size;
  }

  /** Adds `member`, whose shortest period is `periodMs`. */
  add(member: TickMember, periodMs: number): void {
    this.#members.add(member);
    const every = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(periodMs / 4)));
    if (this.#timer !== undefined && every >= this.#everyMs) return;
    this.#everyMs = this.#timer === undefined ? every : Math.min(every, this.#everyMs);
    clearInterval(this.#timer);
    const timer = setInterval(() => this.#tick(), this.#everyMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  delete(member: TickMember): void {
    if (!this.#members.delete(member) || this.#members.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#everyMs = MAX_TICK_MS;
  }

  #tick(): void {
    const now = performance.now();
    for (const member of this.#members) {
      try {
        member.tick(now);
      } catch {
        // A member's failure must not stop the others' checks.
      }
    }
  }
}

/** The ticker all tunnels share. */
export const tunnelTicker: Ticker = new Ticker();

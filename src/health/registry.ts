/**
 * The registry of live upstream state, keyed by `${site}/${group}/${url}`, so that health
 * verdicts and counters survive a reload that keeps the same upstreams.
 *
 * @module
 */

import type { PassiveHealthConfig } from "../config/types.ts";
import { HostState } from "./host_state.ts";

/** Owns every {@linkcode HostState}; one per server process, shared by successive plans. */
export class HostRegistry {
  readonly #states = new Map<string, HostState>();

  /**
   * Returns the existing state for `key` (with `passive` applied) or creates one.
   *
   * @param key `${site}/${group}/${url}`
   * @param passive the passive health settings of the group being built
   */
  get(key: string, passive: PassiveHealthConfig): HostState {
    let state = this.#states.get(key);
    if (state) state.configure(passive);
    else {
      state = new HostState(key, passive);
      this.#states.set(key, state);
    }
    return state;
  }

  /** Returns the state for `key` without creating it. */
  peek(key: string): HostState | undefined {
    return this.#states.get(key);
  }

  /** Drops states whose keys are not in `keep` (called after a reload). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#states.keys()) {
      if (!keep.has(key)) this.#states.delete(key);
    }
  }

  /** Number of states held. */
  get size(): number {
    return this.#states.size;
  }

  /** Keys of every state held, in creation order. */
  keys(): string[] {
    return [...this.#states.keys()];
  }
}

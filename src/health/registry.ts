/**
 * The registry of live upstream state, keyed by `${site}/${group}/${url}`, so that health
 * verdicts and counters survive a reload that keeps the same upstreams.
 *
 * With `server.workers > 1` every thread has a registry over one shared {@linkcode HostTable}:
 * the supervisor's allocates a slot per key, and each worker's is told the slots
 * ({@linkcode HostRegistry.assign}) before it builds a plan, so a key means the same cells in
 * every thread.
 *
 * @module
 */

import { HostCells, type HostTable } from "./host_cells.ts";
import { HostState, type PassiveHealth } from "./host_state.ts";

/** Owns every {@linkcode HostState}; one per server process, shared by successive plans. */
export class HostRegistry {
  readonly #states = new Map<string, HostState>();
  readonly #table: HostTable | null;
  /** Key → byte offset of its slot in the shared table. */
  readonly #slots = new Map<string, number>();
  #onTableFull: (() => void) | null;

  /**
   * @param table a shared table (the supervisor's, or a worker's map of it) @default none:
   *   every state gets cells of its own
   * @param onTableFull told (once) when the table has no room left and a state falls back to
   *   cells other threads do not see
   */
  constructor(table: HostTable | null = null, onTableFull?: () => void) {
    this.#table = table;
    this.#onTableFull = onTableFull ?? null;
  }

  /**
   * Returns the existing state for `key` (with `passive` applied) or creates one.
   *
   * @param key `${site}/${group}/${url}`
   * @param passive the passive health settings of the group being built
   */
  get(key: string, passive: PassiveHealth): HostState {
    let state = this.#states.get(key);
    if (state) state.configure(passive);
    else {
      state = new HostState(key, passive, this.#cellsFor(key, passive));
      this.#states.set(key, state);
    }
    return state;
  }

  /** Returns the state for `key` without creating it. */
  peek(key: string): HostState | undefined {
    return this.#states.get(key);
  }

  /**
   * Drops states whose keys are not in `keep` (called after a reload). Their slots in the shared
   * table go back to it (supervisor only), to serve other members once `reuseAfterMs` have
   * passed: the plan they served may still be finishing requests (its grace period).
   */
  retain(keep: ReadonlySet<string>, reuseAfterMs = 0): void {
    const after = Date.now() + reuseAfterMs;
    for (const key of this.#states.keys()) {
      if (!keep.has(key)) {
        this.#states.delete(key);
        const slot = this.#slots.get(key);
        if (slot !== undefined) {
          this.#slots.delete(key);
          this.#table?.release(slot, after);
        }
      }
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

  /** Key → slot offset of every state in the shared table (what a worker's registry needs). */
  slots(): [string, number][] {
    return [...this.#slots];
  }

  /** A worker's registry: the slots the supervisor allocated (new keys only; known ones stay). */
  assign(slots: readonly (readonly [string, number])[]): void {
    for (const [key, slot] of slots) {
      if (!this.#states.has(key)) this.#slots.set(key, slot);
    }
  }

  #cellsFor(key: string, passive: PassiveHealth): HostCells | undefined {
    const table = this.#table;
    if (table === null) return undefined;
    let slot = this.#slots.get(key);
    if (slot === undefined && table.owner) {
      slot = table.allocate(Math.max(1, passive.maxFails)) ?? undefined;
      if (slot === undefined) {
        this.#onTableFull?.();
        this.#onTableFull = null;
        return undefined;
      }
      this.#slots.set(key, slot);
    }
    return slot === undefined ? undefined : HostCells.inTable(table, slot);
  }
}

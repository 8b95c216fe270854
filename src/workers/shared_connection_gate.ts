/**
 * The client-connection budget of one worker thread: `max_connections` is shared out evenly
 * (each worker stops accepting at its part, and its new connections wait in its own kernel
 * backlog, as they would with one thread), and `max_connections_per_ip` holds for the whole
 * process: each worker counts its connections per address in a {@linkcode SharedKeyTable} of
 * its own, and admits one more only when the counts of all of them add up to less than the
 * limit. A table of its own, because a worker that dies takes its connections with it: the
 * supervisor clears that worker's table and nobody else's count is touched.
 *
 * @module
 */

import { ConnectionGate } from "../server/connection_gate.ts";
import type { SharedKeyTable, UpdatePolicy } from "./shared_key_table.ts";

/** Counts of 0 are free entries; a count is never evicted. */
const COUNTS: UpdatePolicy = { isFree: (n) => n <= 0, evict: false };

/** A worker's part of `max` connections when `workers` share them. */
export function connectionShare(max: number, workers: number): number {
  return Math.max(1, Math.ceil(max / workers));
}

/** A worker thread's {@linkcode ConnectionGate}. */
export class SharedConnectionGate extends ConnectionGate {
  /** Every worker's table, this one's included. */
  readonly #tables: readonly SharedKeyTable[];
  readonly #own: SharedKeyTable;
  #perIp: number;
  /** Whether this worker ever counted an address (then releases must uncount). */
  #counted = false;

  /**
   * @param tables every worker's table of connections per address
   * @param own the index of this worker's
   */
  constructor(tables: readonly SharedKeyTable[], own: number, max: number, maxPerIp: number) {
    super(connectionShare(max, tables.length), 0);
    this.#tables = tables;
    this.#own = tables[own];
    this.#perIp = maxPerIp;
  }

  override configure(max: number, maxPerIp: number): void {
    this.#perIp = maxPerIp;
    super.configure(connectionShare(max, this.#tables.length), 0);
  }

  /** Counts a connection against `ip`'s limit for the whole process; false when at it. */
  override claim(ip: string): boolean {
    const limit = this.#perIp;
    if (limit <= 0) return true;
    let others = 0;
    for (const t of this.#tables) if (t !== this.#own) others += t.get(ip, COUNTS) ?? 0;
    if (others >= limit) return false;
    this.#counted = true;
    let refused = false;
    this.#own.update(ip, COUNTS, (n) => {
      const open = n ?? 0;
      if (open + others >= limit) {
        refused = true;
        return undefined;
      }
      return open + 1;
    });
    return !refused;
  }

  override unclaim(ip: string): void {
    if (this.#counted) {
      this.#own.update(ip, COUNTS, (n) => (n === undefined ? undefined : n - 1));
    }
  }
}

/**
 * The keep-alive pool: idle connections per upstream origin (newest first out), busy counts for
 * status and metrics, and a sweeper that closes connections idle past the idle timeout (kept
 * below the usual upstream keep-alive of 5 s, so bws never reuses a socket the upstream is about
 * to close). An idle connection keeps one read pending, which closes it at once on any byte or
 * EOF from the upstream (see {@link Connection.watchIdle}).
 *
 * @module
 */

import { coarseNow } from "../net/deadlines.ts";
import type { Connection } from "./connection.ts";

interface OriginPool {
  idle: Connection[];
  busy: number;
}

/** Options of {@link ConnectionPool}. */
export interface ConnectionPoolOptions {
  /** Idle connections kept per origin. */
  readonly maxIdlePerOrigin: number;
  /** Milliseconds a connection may wait idle. */
  readonly idleMs: number;
}

/** Idle and busy connections per origin. */
export class ConnectionPool {
  readonly #maxIdle: number;
  readonly #idleMs: number;
  readonly #pools = new Map<string, OriginPool>();
  #sweeper: ReturnType<typeof setInterval> | undefined = undefined;
  #closed = false;

  constructor(opts: ConnectionPoolOptions) {
    this.#maxIdle = opts.maxIdlePerOrigin;
    this.#idleMs = opts.idleMs;
  }

  /** An idle connection to `origin`, now busy, or null. */
  take(origin: string): Connection | null {
    const p = this.#pools.get(origin);
    if (p === undefined) return null;
    let now = 0;
    while (p.idle.length > 0) {
      const c = p.idle.pop()!;
      if (now === 0) now = coarseNow();
      if (c.closed || now - c.idleSince >= this.#idleMs) {
        c.close();
        continue;
      }
      c.takeFromPool();
      p.busy++;
      return c;
    }
    return null;
  }

  /** Counts a freshly dialled connection as busy. */
  addBusy(conn: Connection): void {
    conn.inUse = true;
    this.#pool(conn.origin).busy++;
  }

  /** A busy connection leaves the pool for good (closed, or given away by an upgrade). */
  forget(conn: Connection): void {
    if (conn.inUse) {
      conn.inUse = false;
      this.#pool(conn.origin).busy--;
    }
  }

  /** Closes a busy connection and forgets it. */
  drop(conn: Connection): void {
    conn.close();
    this.forget(conn);
  }

  /** A busy connection that finished its exchange cleanly: back to the idle list. */
  release(conn: Connection): void {
    const p = this.#pool(conn.origin);
    this.forget(conn);
    if (this.#closed || conn.closed || p.idle.length >= this.#maxIdle) {
      conn.close();
      return;
    }
    conn.idleSince = coarseNow();
    conn.watchIdle();
    p.idle.push(conn);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, this.#idleMs / 4));
      Deno.unrefTimer(this.#sweeper);
    }
  }

  /** Idle and busy connections per origin. */
  stats(): { origin: string; idle: number; busy: number }[] {
    const out: { origin: string; idle: number; busy: number }[] = [];
    for (const [origin, p] of this.#pools) out.push({ origin, idle: p.idle.length, busy: p.busy });
    return out;
  }

  /** Closes every idle connection (the pool stays open); gives how many. */
  closeIdle(): number {
    let n = 0;
    for (const p of this.#pools.values()) {
      for (const c of p.idle) c.close();
      n += p.idle.length;
      p.idle.length = 0;
    }
    this.#stopSweeper();
    return n;
  }

  /** Closes every idle connection; busy ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    this.closeIdle();
  }

  #pool(origin: string): OriginPool {
    let p = this.#pools.get(origin);
    if (p === undefined) {
      p = { idle: [], busy: 0 };
      this.#pools.set(origin, p);
    }
    return p;
  }

  #sweep(): void {
    const now = Date.now();
    let left = 0;
    for (const p of this.#pools.values()) {
      let stale = 0;
      while (stale < p.idle.length && now - p.idle[stale].idleSince >= this.#idleMs) {
        p.idle[stale++].close();
      }
      if (stale > 0) p.idle.splice(0, stale);
      left += p.idle.length;
    }
    if (left === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    if (this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

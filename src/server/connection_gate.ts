/**
 * The client-connection budget of the whole process (`[server.limits]`): `max_connections` in all
 * (past it the accept loops wait, and new connections queue in the kernel backlog) and
 * `max_connections_per_ip` (past it a new connection from that address is closed at once, and an
 * HTTP/2 request past that many in flight from the address gets 503).
 *
 * @module
 */

/** Counts open client connections; one instance per process, shared by every listener. */
export class ConnectionGate {
  #open = 0;
  #max: number;
  #perIp: number;
  readonly #byIp = new Map<string, number>();
  /** HTTP/2 requests in flight by address (counted only while a per-address limit is set). */
  readonly #streamsByIp = new Map<string, number>();
  #waiters: (() => void)[] = [];

  /** `maxPerIp` 0 = no per-address limit. */
  constructor(max: number, maxPerIp: number) {
    this.#max = max;
    this.#perIp = maxPerIp;
  }

  /** Applies new limits (reload). Waiting accept loops resume when there is room again. */
  configure(max: number, maxPerIp: number): void {
    this.#max = max;
    this.#perIp = maxPerIp;
    this.#wake();
  }

  /** Open client connections. */
  get open(): number {
    return this.#open;
  }

  get max(): number {
    return this.#max;
  }

  /** Resolves when another connection may be accepted (at once when below the limit). */
  room(): Promise<void> | null {
    if (this.#open < this.#max) return null;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Counts a new connection from `ip`; false (not counted) when that address is at its limit.
   * `null`: counted in the total only (a load balancer's connection on a PROXY protocol port,
   * counted by its client's address once the header named it: {@link claim}).
   */
  admit(ip: string | null): boolean {
    if (ip !== null && !this.claim(ip)) return false;
    this.#open++;
    return true;
  }

  /** A connection counted by {@link admit} ended. */
  release(ip: string | null): void {
    this.#open--;
    if (ip !== null) this.unclaim(ip);
    this.#wake();
  }

  /** Counts an admitted connection against `ip`'s limit; false (not counted) when at it. */
  claim(ip: string): boolean {
    return take(this.#byIp, ip, this.#perIp);
  }

  /** Ends what {@link claim} counted. */
  unclaim(ip: string): void {
    give(this.#byIp, ip);
  }

  /**
   * Counts an HTTP/2 request in flight from `ip`; false (not counted) when that address already
   * has `max_connections_per_ip` of them. As nginx's `limit_conn` counts each HTTP/2 request as
   * a connection: over HTTP/1.1 an address has at most one request in flight per connection, and
   * one HTTP/2 connection carries up to 200.
   */
  claimStream(ip: string): boolean {
    return take(this.#streamsByIp, ip, this.#perIp);
  }

  /** Ends what {@link claimStream} counted. */
  releaseStream(ip: string): void {
    give(this.#streamsByIp, ip);
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#open < this.#max) this.#waiters.shift()!();
  }
}

/** Counts one more for `ip` unless it has `limit` already (0 = no limit: nothing is counted). */
function take(counts: Map<string, number>, ip: string, limit: number): boolean {
  if (limit > 0) {
    const n = counts.get(ip) ?? 0;
    if (n >= limit) return false;
    counts.set(ip, n + 1);
  }
  return true;
}

/** Counts one less for `ip` (nothing when it has none counted). */
function give(counts: Map<string, number>, ip: string): void {
  const n = counts.get(ip);
  if (n === undefined) return;
  if (n <= 1) counts.delete(ip);
  else counts.set(ip, n - 1);
}

/**
 * The set of open relayed WebSocket pairs, for shutdown and counts.
 *
 * @module
 */

/** One relayed pair as the registry sees it. */
export interface RelayedPair {
  /** Starts closing both legs: `code` to the client; upstream the same code (the byte tunnel)
   * or the nearest one Deno's WebSocket client can send (the message relay). */
  close(code: number, reason: string): void;
  /** Settles once both legs are closed (or abandoned). */
  readonly done: Promise<void>;
  /** Bytes of relay buffers the pair holds now (the byte tunnel). */
  readonly bufferBytes?: number;
}

/** Open WebSocket pairs; `relayWebSocket` and `startTunnel` add and remove them. */
export class WebSocketRegistry {
  #pairs = new Set<RelayedPair>();

  /** Number of pairs open (or closing). */
  get size(): number {
    return this.#pairs.size;
  }

  /** Bytes of relay buffers every open pair holds now. */
  bufferBytes(): number {
    let total = 0;
    for (const pair of this.#pairs) total += pair.bufferBytes ?? 0;
    return total;
  }

  /** @internal Called by the relay once the client leg is upgraded. */
  add(pair: RelayedPair): void {
    this.#pairs.add(pair);
  }

  /** @internal Called by the relay once the pair is fully closed. */
  delete(pair: RelayedPair): void {
    this.#pairs.delete(pair);
  }

  /**
   * Close every pair (the client gets `code`/`reason`; the upstream the same from the byte
   * tunnel, 1000 with that reason from the message relay, the only code Deno's client can send
   * for it). Resolves when all are closed or after `timeoutMs`; pairs still open then are
   * forgotten so the registry is empty.
   *
   * @param code @default 1001
   * @param reason @default "server shutting down"
   * @param timeoutMs @default 5000
   */
  async closeAll(code = 1001, reason = "server shutting down", timeoutMs = 5000): Promise<void> {
    const pairs = [...this.#pairs];
    for (const pair of pairs) pair.close(code, reason);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([Promise.all(pairs.map((p) => p.done)), timeout]);
    } finally {
      clearTimeout(timer);
    }
    for (const pair of pairs) this.#pairs.delete(pair);
  }
}

/**
 * A WebSocket relayed as a byte tunnel once both handshakes are done: two pumps copy bytes each
 * way with backpressure (a side that does not read stops the other from being read), frame
 * boundaries are followed to count messages, enforce masking and the client's message size, and
 * to put bws's own close and ping frames between frames. Close codes and reasons pass through
 * as the bytes they are.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";
import { closeFrame, pingFrame } from "./control_frames.ts";
import { FrameError } from "./frame_cursor.ts";
import { TunnelError } from "./errors.ts";
import { errorText } from "../log/error_text.ts";
import { Pump, type PumpOwner } from "./tunnel_pump.ts";
import { type TickMember, tunnelTicker } from "./tunnel_ticker.ts";
import type { RelayedPair, WebSocketRegistry } from "./websocket_registry.ts";

/** What `onClose` reports about a finished tunnel. */
export interface TunnelCloseInfo {
  /** The first close: a close frame's code and reason (1005 when it had no code), the code bws
   * sent, or 1006 when a side dropped without one. */
  code: number;
  reason: string;
  /** Data messages and their payload bytes, client to upstream. */
  messagesIn: number;
  bytesIn: number;
  /** Data messages and their payload bytes, upstream to client. */
  messagesOut: number;
  bytesOut: number;
  durationMs: number;
  /** Why the tunnel failed, when a socket failed or a side broke the protocol. */
  error?: TunnelError;
}

/** How a tunnel runs. */
export interface TunnelOptions {
  /** ms without data either way before both sides get a close 1001 "idle timeout"; 0 = off.
   * Data frames count, control frames do not (bws's own pings would keep every tunnel open). */
  idleTimeoutMs: number;
  /** ms without a byte from the client before bws pings it; no byte within half that again:
   * close 1001 "ping timeout"; 0 = off. */
  pingIntervalMs: number;
  /** Bytes: a client message (all its fragments) larger than this: the client gets close 1009
   * "message too big", the upstream 1000 "client message too big"; 0 = no limit. */
  maxMessage: number;
  /** The set of open tunnels (for shutdown). */
  registry: WebSocketRegistry;
  /** ms a closing tunnel waits for both close handshakes (and for writes in flight) before it
   * closes the sockets anyway. @default 2000 */
  closeGraceMs?: number;
  /** Bytes read per call in each direction. @default 32768 */
  bufferSize?: number;
  /** Called once, when both sockets are closed. */
  onClose?(info: TunnelCloseInfo): void;
}

/** An open tunnel. */
export interface Tunnel extends RelayedPair {
  /** Closes both sides: `code`/`reason` in a close frame to each, at the next frame boundary of
   * each direction; the sockets are closed once both answer, or after the close grace. */
  close(code: number, reason: string): void;
  /** Settles once both sockets are closed. */
  readonly done: Promise<void>;
}

const DEFAULT_GRACE_MS = 2000;
const DEFAULT_BUFFER = 32 * 1024;

/**
 * Starts relaying between `client` and `upstream`, first the bytes already read from each after
 * the handshake (`clientBuffered`, `upstreamBuffered`; may be empty). The tunnel owns both
 * streams from now on and closes them however it ends.
 */
export function startTunnel(
  client: ByteStream,
  clientBuffered: Uint8Array,
  upstream: ByteStream,
  upstreamBuffered: Uint8Array,
  opts: TunnelOptions,
): Tunnel {
  return new ByteTunnel(client, clientBuffered, upstream, upstreamBuffered, opts);
}

class ByteTunnel implements Tunnel, PumpOwner, TickMember {
  readonly done: Promise<void>;
  #resolveDone!: () => void;
  readonly #client: ByteStream;
  readonly #upstream: ByteStream;
  readonly #opts: TunnelOptions;
  readonly #graceMs: number;
  /** Client to upstream. */
  readonly #in: Pump;
  /** Upstream to client. */
  readonly #out: Pump;
  readonly #started = performance.now();
  #closing = false;
  #ended = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #code = 0;
  #reason = "";
  #error: TunnelError | undefined;
  /** Idle and ping bookkeeping, updated by the ticker. */
  #seenData = 0;
  #dataAt = 0;
  #seenClientBytes = 0;
  #clientBytesAt = 0;
  #pinged = false;

  constructor(
    client: ByteStream,
    clientBuffered: Uint8Array,
    upstream: ByteStream,
    upstreamBuffered: Uint8Array,
    opts: TunnelOptions,
  ) {
    this.#client = client;
    this.#upstream = upstream;
    this.#opts = opts;
    this.#graceMs = opts.closeGraceMs ?? DEFAULT_GRACE_MS;
    const bufferSize = opts.bufferSize ?? DEFAULT_BUFFER;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    this.#in = new Pump({
      source: client,
      destination: upstream,
      masked: true,
      maxMessage: opts.maxMessage,
      bufferSize,
      owner: this,
    });
    this.#out = new Pump({
      source: upstream,
      destination: client,
      masked: false,
      maxMessage: 0,
      bufferSize,
      owner: this,
    });
    opts.registry.add(this);
    const periods = [opts.idleTimeoutMs, opts.pingIntervalMs / 2].filter((ms) => ms > 0);
    if (periods.length > 0) {
      this.#dataAt = this.#clientBytesAt = this.#started;
      tunnelTicker.add(this, Math.min(...periods));
    }
    void this.#in.run(clientBuffered);
    void this.#out.run(upstreamBuffered);
  }

  /** Bytes of the two directions' buffers now (4 KiB reads each while quiet). */
  get bufferBytes(): number {
    return this.#in.bufferBytes + this.#out.bufferBytes;
  }

  close(code: number, reason: string): void {
    if (this.#ended) return;
    this.#record(code, reason);
    this.#startClosing();
    this.#out.inject(closeFrame(code, reason, false), true);
    this.#in.inject(closeFrame(code, reason, true), true);
  }

  /** The shared ticker's check: idle data, and the client's liveness when pinging. */
  tick(now: number): void {
    if (this.#closing) return;
    const opts = this.#opts;
    if (opts.idleTimeoutMs > 0) {
      const a = this.#in.cursor;
      const b = this.#out.cursor;
      const data = a.dataBytes + a.messages + b.dataBytes + b.messages;
      if (data !== this.#seenData) {
        this.#seenData = data;
        this.#dataAt = now;
      } else if (now - this.#dataAt >= opts.idleTimeoutMs) {
        return this.close(1001, "idle timeout");
      }
    }
    const pingMs = opts.pingIntervalMs;
    if (pingMs > 0) {
      const bytes = this.#in.bytesRead;
      if (bytes !== this.#seenClientBytes) {
        this.#seenClientBytes = bytes;
        this.#clientBytesAt = now;
        this.#pinged = false;
      } else if (now - this.#clientBytesAt >= pingMs * 1.5) {
        this.close(1001, "ping timeout");
      } else if (!this.#pinged && now - this.#clientBytesAt >= pingMs) {
        this.#pinged = true;
        this.#out.inject(pingFrame(), false);
      }
    }
  }

  sourceClosed(pump: Pump): void {
    this.#record(pump.cursor.closeCode, pump.cursor.closeReason);
    this.#startClosing();
    this.#endIfBothClosed();
  }

  closeDelivered(): void {
    this.#startClosing();
    this.#endIfBothClosed();
  }

  violation(pump: Pump): Uint8Array {
    const cursor = pump.cursor;
    this.#startClosing();
    if (pump === this.#in) {
      const tooBig = cursor.error === FrameError.TooBig;
      const why = tooBig ? "client message too big" : "client protocol error";
      this.#record(tooBig ? 1009 : 1002, why);
      this.#error ??= new TunnelError(
        tooBig ? "message_too_big" : "protocol",
        "client",
        `Cannot relay from the client: ${cursor.errorDetail}`,
      );
      const code = tooBig ? 1009 : 1002;
      this.#out.inject(
        closeFrame(code, tooBig ? "message too big" : "protocol error", false),
        true,
      );
      return closeFrame(1000, why, true);
    }
    this.#record(1002, "upstream protocol error");
    this.#error ??= new TunnelError(
      "protocol",
      "upstream",
      `Cannot relay from the upstream: ${cursor.errorDetail}`,
    );
    this.#in.inject(closeFrame(1002, "protocol error", true), true);
    return closeFrame(1001, "upstream protocol error", false);
  }

  ended(pump: Pump, error: unknown, failed: "source" | "destination"): void {
    if (this.#ended) return;
    const fromClient = (pump === this.#in) === (failed === "source");
    const side = fromClient ? "client" : "upstream";
    if (error !== null && this.#error === undefined) {
      const kind = failed === "source" ? "read" : "write";
      const action = failed === "source" ? "read from" : "write to";
      this.#error = new TunnelError(
        kind,
        side,
        `Cannot ${action} the ${side}: ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    const gone = fromClient ? this.#in : this.#out;
    if (!gone.sourceSentClose) {
      this.#record(1006, `${side} went away`);
      // Tell the other side, when the stream towards it is between frames.
      if (fromClient) this.#in.inject(closeFrame(1001, "client went away", true), true);
      else this.#out.inject(closeFrame(1011, "upstream went away", false), true);
    }
    void this.#end(true);
  }

  #record(code: number, reason: string): void {
    if (this.#code !== 0) return;
    this.#code = code;
    this.#reason = reason;
  }

  /** From the first close on, the tunnel has `closeGraceMs` to finish. */
  #startClosing(): void {
    if (this.#closing) return;
    this.#closing = true;
    tunnelTicker.delete(this);
    this.#graceTimer = setTimeout(() => void this.#end(false), this.#graceMs);
  }

  /** Both sides sent a close and got one: the handshakes are complete. */
  #endIfBothClosed(): void {
    const a = this.#in;
    const b = this.#out;
    if (
      a.sourceSentClose && a.destinationGotClose && b.sourceSentClose && b.destinationGotClose
    ) {
      void this.#end(true);
    }
  }

  /** Ends once: lets writes in flight finish (bounded by the grace unless it is what ran out),
   * closes both sockets, forgets the tunnel and reports it. Never rejects. */
  async #end(flush: boolean): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    tunnelTicker.delete(this);
    clearTimeout(this.#graceTimer);
    this.#in.stop();
    this.#out.stop();
    try {
      if (flush) await this.#drain();
    } finally {
      closeQuietly(this.#client);
      closeQuietly(this.#upstream);
      this.#opts.registry.delete(this);
      this.#report();
      this.#resolveDone();
    }
  }

  async #drain(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, this.#graceMs));
    try {
      await Promise.race([Promise.all([this.#in.drain(), this.#out.drain()]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #report(): void {
    const onClose = this.#opts.onClose;
    if (onClose === undefined) return;
    const a = this.#in.cursor;
    const b = this.#out.cursor;
    const info: TunnelCloseInfo = {
      code: this.#code === 0 ? 1006 : this.#code,
      reason: this.#reason,
      messagesIn: a.messages,
      bytesIn: a.dataBytes,
      messagesOut: b.messages,
      bytesOut: b.dataBytes,
      durationMs: performance.now() - this.#started,
    };
    if (this.#error !== undefined) info.error = this.#error;
    try {
      onClose(info);
    } catch {
      // A reporting failure must not escape into the pumps.
    }
  }
}

function closeQuietly(stream: ByteStream): void {
  try {
    stream.close();
  } catch {
    // Already closed.
  }
}

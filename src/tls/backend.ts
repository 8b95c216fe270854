/**
 * What the TLS listener needs from one bound socket that terminates TLS: it accepts within the
 * process's connection budget, completes each handshake within the handshake timeout, and hands
 * the decrypted stream (with the ALPN protocol chosen) to bws's front end.
 *
 * @module
 */

import type { ByteStream, Peer } from "../http1/types.ts";
import type { ConnectionGate } from "../server/connection_gate.ts";

/** A TLS connection whose handshake completed. The callee owns `stream` and must call
 * `release` once it is closed (it frees the connection's place in the budget). */
export type TlsConnectionHandler = (
  stream: ByteStream,
  peer: Peer,
  alpn: string | null,
  release: () => void,
) => void;

/** Where and how a backend binds and serves. */
export interface BackendOptions {
  readonly hostname: string;
  readonly port: number;
  /** Sets SO_REUSEPORT so two backends can share the port during a hand-over. */
  readonly reusePort: boolean;
  readonly onConnection: TlsConnectionHandler;
  /** The process's client connection budget. */
  readonly gate: ConnectionGate;
  /** Milliseconds a client may take to complete its handshake (read at each accept). */
  readonly handshakeTimeoutMs: () => number;
  /** Accepting failed (descriptors ran out, or another error); rate limited by the caller. */
  readonly onAcceptError?: (err: Error, shortage: boolean) => void;
}

/** One listening socket with the handshakes in progress on it. */
export interface Backend {
  /** The bound address (the real port when 0 was asked). */
  readonly addr: { hostname: string; port: number };
  /** Closes the listening socket now; handshakes in progress go on. */
  stopAccepting(): void;
  /** Stops accepting and ends the handshakes still in progress. */
  shutdown(): Promise<void>;
}

/** ALPN protocols offered on every TLS port. */
export const ALPN = ["h2", "http/1.1"];

/**
 * True when this process runs with `--unstable-net`, which `reusePort` needs (without it Deno
 * exits the process instead of throwing). `Deno.listenDatagram` exists only under that flag.
 */
export function canReusePort(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}

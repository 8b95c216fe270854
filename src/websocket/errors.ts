/**
 * Typed failures of WebSocket relaying, like the upstream client's `UpstreamError`: `kind` is
 * stable (the proxy chooses a handshake's status by it), `message` is for logs only.
 *
 * @module
 */

/** Why a WebSocket handshake was refused; the status comes from `proxy/failure_status.ts`. */
export type HandshakeFailureKind =
  /** The client's request is not a valid upgrade (method, Upgrade, key, a body). */
  | "bad_upgrade"
  /** The client asked for a protocol version other than 13. */
  | "version"
  /** The upstream's 101 is not a valid answer to the request bws sent. */
  | "upstream_handshake";

/** A refused WebSocket handshake. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
  readonly kind: HandshakeFailureKind;
  constructor(kind: HandshakeFailureKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** Why a relayed WebSocket (a tunnel) failed. */
export type TunnelErrorKind =
  /** A side broke the frame rules (RFC 6455 section 5): unmasked client frame, reserved opcode … */
  | "protocol"
  /** A client message grew past `max_buffered`. */
  | "message_too_big"
  /** Reading from a side failed. */
  | "read"
  /** Writing to a side failed. */
  | "write";

/** A failed tunnel: what went wrong, and on which side. */
export class TunnelError extends Error {
  override name = "TunnelError";
  readonly kind: TunnelErrorKind;
  readonly side: "client" | "upstream";

  constructor(
    kind: TunnelErrorKind,
    side: "client" | "upstream",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.kind = kind;
    this.side = side;
  }
}

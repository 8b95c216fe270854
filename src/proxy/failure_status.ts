/**
 * The one place where a failure while proxying — an upstream exchange, the client's request
 * body, a WebSocket handshake — becomes the status the client gets, and the words the access
 * log gives it.
 *
 * @module
 */

import { HttpError } from "../http1/errors.ts";
import { UpstreamError } from "../upstream/errors.ts";
import { HandshakeError } from "../websocket/errors.ts";

/**
 * 502 by default; 504 when the upstream was too slow; 413 for a body past the limit; 499 when
 * the client went away; 503 when bws had no file descriptor left to connect with; the front end's own status (408, 400) when the client's body failed;
 * 400 / 426 for a refused WebSocket upgrade.
 */
export function statusForFailure(err: unknown): number {
  if (err instanceof UpstreamError) {
    switch (err.kind) {
      case "body_too_large":
        return 413;
      case "connect_timeout":
      case "read_timeout":
      case "write_timeout":
        return 504;
      case "aborted":
        return 499;
      case "no_descriptors":
        return 503;
      case "client_body":
        return err.cause instanceof HttpError ? err.cause.status : 400;
      default:
        return 502;
    }
  }
  if (err instanceof HttpError) return err.status;
  if (err instanceof HandshakeError) {
    switch (err.kind) {
      case "bad_upgrade":
        return 400;
      case "version":
        return 426;
      default:
        return 502;
    }
  }
  return 502;
}

/** A short description for the access log (never shown to clients). */
export function describeFailure(err: unknown): string {
  if (err instanceof UpstreamError) return `${err.kind}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

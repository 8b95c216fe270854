/**
 * Typed failures of the upstream HTTP/1.1 client, carrying what the proxy needs to decide on
 * retries and on the status to answer (502 / 504).
 *
 * @module
 */

import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import { errorText } from "../log/error_text.ts";

/** What went wrong talking to an upstream. */
export type UpstreamErrorKind =
  | "connect_refused"
  | "connect_timeout"
  | "dns"
  | "tls"
  | "reset"
  | "read_timeout"
  | "write_timeout"
  | "protocol"
  | "head_too_large"
  | "aborted"
  | "closed"
  /** The streamed request body grew past `UpstreamRequest.maxBodyLength`. */
  | "body_too_large"
  /** The client's request body could not be read (it went away, timed out, or sent bad
   * framing): the cause is the front end's error, whose status the client gets. */
  | "client_body"
  /** bws itself had no file descriptor left for the connection (EMFILE/ENFILE): a moment's
   * shortage of its own, never held against the upstream's health. */
  | "no_descriptors";

/** Flags describing how far the exchange got when it failed. */
export interface UpstreamErrorFlags {
  /** The request never reached the upstream (connect phase). @default false */
  dial?: boolean;
  /** Some request bytes were written. @default false */
  requestSent?: boolean;
  /** Failed on a reused pooled connection before any response byte. @default false */
  reusedConnection?: boolean;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** A failure of the upstream client; `kind` is stable, `message` is for logs only. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  /** What went wrong. */
  kind: UpstreamErrorKind;
  /** True when the request never reached the upstream (connect phase): always safe to retry. */
  dial: boolean;
  /** True once any request byte was written. */
  requestSent: boolean;
  /** True when the failure happened on a reused pooled connection before any response byte. */
  reusedConnection: boolean;

  constructor(kind: UpstreamErrorKind, message: string, flags: UpstreamErrorFlags = {}) {
    super(message, flags.cause === undefined ? undefined : { cause: flags.cause });
    this.kind = kind;
    this.dial = flags.dial ?? false;
    this.requestSent = flags.requestSent ?? false;
    this.reusedConnection = flags.reusedConnection ?? false;
  }
}

/** Maps an OS / Deno socket error to a kind (for failures after the connection was set up). */
export function socketErrorKind(err: unknown): UpstreamErrorKind {
  if (err instanceof Deno.errors.TimedOut) return "read_timeout";
  if (
    err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.UnexpectedEof
  ) return "reset";
  if (err instanceof Deno.errors.InvalidData) return "tls";
  return "reset";
}

/** Maps an error thrown by `Deno.connect` / `Deno.connectTls` / the TLS handshake. */
export function connectErrorKind(err: unknown, tls: boolean): UpstreamErrorKind {
  if (isDescriptorShortage(err)) return "no_descriptors";
  if (err instanceof Deno.errors.ConnectionRefused) return "connect_refused";
  if (err instanceof Deno.errors.TimedOut) return "connect_timeout";
  const msg = errorText(err);
  if (
    err instanceof Deno.errors.NotFound ||
    /lookup address|dns error|name or service|resolve/i.test(msg)
  ) return "dns";
  if (
    tls &&
    (err instanceof Deno.errors.InvalidData || /certificate|handshake|tls|alert/i.test(msg))
  ) return "tls";
  if (err instanceof Deno.errors.ConnectionReset) return tls ? "tls" : "reset";
  return "connect_refused";
}

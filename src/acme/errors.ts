/**
 * Typed failures of certificate management (ACME), like the upstream client's `UpstreamError`:
 * `kind` is stable and decides what the manager does next, `message` is for logs only.
 *
 * @module
 */

import { errorText } from "../log/error_text.ts";

/** What went wrong managing a certificate. */
export type AcmeErrorKind =
  /** The store cannot be reached now (Redis down or slow): the manager tries again soon,
   *  without backing off, and keeps serving the certificate it has. */
  | "store_unavailable"
  /** A certificate write under a lease that had expired and been taken was refused. */
  | "lock_lost"
  /** Another instance holds the renewal lock of these names. */
  | "lock_held"
  /** The manager was stopped. */
  | "stopped"
  /** No names to order, or a certificate that does not name them all. */
  | "names"
  /** `storage_dir` cannot hold the certificate (a write failed, a name unusable as a folder). */
  | "storage"
  /** The CA's renewal info (ARI, RFC 9773) cannot be read or used. */
  | "renewal_info"
  /** The order failed at the CA: refused, unreachable, or a challenge bws cannot answer. */
  | "order";

/** A failure of certificate management. */
export class AcmeError extends Error {
  override name = "AcmeError";
  readonly kind: AcmeErrorKind;

  constructor(kind: AcmeErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/** Whether `err` is an {@link AcmeError} of `kind`. */
export function isAcmeError(err: unknown, kind: AcmeErrorKind): err is AcmeError {
  return err instanceof AcmeError && err.kind === kind;
}

/**
 * `err` as an {@link AcmeError}: itself when it is one, else an "order" failure whose message
 * adds the CA's problem detail (acme-client keeps it in `response.data.detail`).
 */
export function orderError(err: unknown): AcmeError {
  if (err instanceof AcmeError) return err;
  const detail = (err as { response?: { data?: { detail?: unknown } } } | null)?.response?.data
    ?.detail;
  const text = errorText(err);
  return new AcmeError("order", detail ? `${text} (${detail})` : text, { cause: err });
}

/**
 * The single place where proxy failures become client responses. Bodies name the status and the
 * request id, never an upstream address; the access log carries the detail.
 *
 * @module
 */

import { UpstreamError } from "../upstream/errors.ts";

const encoder = new TextEncoder();

const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  421: "Misdirected Request",
  426: "Upgrade Required",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

/** A short plain-text error response naming the status and the request id. */
export function errorResponse(
  status: number,
  requestId: string,
  extra?: Record<string, string>,
): Response {
  const body = encoder.encode(`${status} ${reasonPhrase(status)}\nrequest id: ${requestId}\n`);
  // An explicit length (Deno keeps it) lets the access log report the bytes sent.
  const headers = new Headers({
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(body.length),
    "x-request-id": requestId,
    "cache-control": "no-store",
  });
  if (extra) { for (const [k, v] of Object.entries(extra)) headers.set(k, v); }
  return new Response(body, { status, headers });
}

/** Maps a failure while proxying to the status the client gets. */
export function statusForError(err: unknown): number {
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
      default:
        return 502;
    }
  }
  return 502;
}

/** A short description for logs. */
export function describeError(err: unknown): string {
  if (err instanceof UpstreamError) return `${err.kind}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * The answers bws makes itself: short plain-text bodies naming the status and the request id,
 * never an upstream address (the access log carries the detail).
 *
 * @module
 */

import { reasonPhrase } from "../http1/head_bytes.ts";
import type { HttpResponse } from "../http1/types.ts";

const encoder = new TextEncoder();

export { reasonPhrase };

/** A short plain-text error response naming the status and the request id. */
export function errorResponse(
  status: number,
  requestId: string,
  extra?: readonly (readonly [string, string])[],
  close = false,
): HttpResponse {
  const body = encoder.encode(`${status} ${reasonPhrase(status)}\nrequest id: ${requestId}\n`);
  const headers: [string, string][] = [
    ["content-type", "text/plain; charset=utf-8"],
    ["x-request-id", requestId],
    ["cache-control", "no-store"],
  ];
  if (extra) { for (const [k, v] of extra) headers.push([k, v]); }
  return { status, headers, body, close };
}

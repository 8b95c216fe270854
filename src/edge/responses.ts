/**
 * The small, complete responses the edge rules refuse with. Bodies are built once per status
 * and shared (a refusal under attack costs no allocation beyond the response object).
 *
 * @module
 */

import type { HttpResponse } from "../http1/types.ts";

const encoder = new TextEncoder();

const REASONS: Readonly<Record<number, string>> = {
  401: "Unauthorized",
  403: "Forbidden",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

const bodies = new Map<number, Uint8Array>();

function bodyFor(status: number): Uint8Array {
  let body = bodies.get(status);
  if (body === undefined) {
    body = encoder.encode(`${status} ${REASONS[status] ?? "Error"}\n`);
    bodies.set(status, body);
  }
  return body;
}

const PLAIN: readonly (readonly [string, string])[] = [
  ["content-type", "text/plain; charset=utf-8"],
  ["cache-control", "no-store"],
];

/** A plain-text refusal with `status`, the usual two headers and `extra` headers after them. */
export function refusalResponse(
  status: number,
  extra: readonly (readonly [string, string])[] = [],
): HttpResponse {
  return {
    status,
    headers: extra.length === 0 ? PLAIN : [...PLAIN, ...extra],
    body: bodyFor(status),
  };
}

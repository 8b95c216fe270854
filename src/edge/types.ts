/**
 * What an edge-protection check answers for one request: let it through unchanged
 * (`null`), let it through with changes to the request that goes upstream, or refuse it with a
 * response and the name of the rule that refused (for the access log and
 * `bws_refused_total{site,rule}`).
 *
 * @module
 */

import type { HttpRequest, HttpResponse } from "../http1/types.ts";

/** The rules, in the order they run. */
export const EDGE_RULES = ["access", "rate_limit", "basic_auth", "forward_auth"] as const;

/** The name of one rule, as the access log and metrics show it. */
export type EdgeRule = typeof EDGE_RULES[number];

/** The request is refused: send `response` (it is complete) and contact no upstream. */
export interface EdgeRefusal {
  readonly refused: true;
  readonly rule: EdgeRule;
  readonly response: HttpResponse;
  /** `response` is an auth service's answer passed on as it is (never given an error page). */
  readonly passedOn?: boolean;
}

/**
 * The request is let through with changes to the request sent upstream: first every field named
 * in `removeHeaders` (lower-case) is dropped, then `addHeaders` are appended.
 */
export interface EdgeUpstreamEdit {
  readonly refused: false;
  readonly removeHeaders: readonly string[];
  readonly addHeaders: readonly (readonly [string, string])[];
}

/** `null`: let the request through as it is. */
export type EdgeVerdict = EdgeRefusal | EdgeUpstreamEdit | null;

/**
 * One compiled rule. `check` answers synchronously when it can (access, the local rate limiter,
 * a cached basic-auth credential): the request path pays no promise for those.
 *
 * @param client the client address as resolved through trusted_proxies (or a PROXY header)
 */
export interface EdgeCheck {
  readonly rule: EdgeRule;
  check(req: HttpRequest, client: string): EdgeVerdict | Promise<EdgeVerdict>;
}

/**
 * Applies a pass verdict's changes to header fields bound upstream: drops every field whose
 * name (compared lower-case) is in `removeHeaders`, then appends `addHeaders`. Returns `fields`
 * itself when there is nothing to change.
 */
export function applyUpstreamEdit<F extends readonly [string, string]>(
  fields: readonly F[],
  edit: EdgeUpstreamEdit | null,
): readonly (F | readonly [string, string])[] {
  if (edit === null) return fields;
  const remove = edit.removeHeaders;
  const out: (F | readonly [string, string])[] = [];
  for (const f of fields) if (!remove.includes(f[0].toLowerCase())) out.push(f);
  for (const f of edit.addHeaders) out.push(f);
  return out;
}

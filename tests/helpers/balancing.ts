/**
 * Helpers for the load-balancing and retry end-to-end tests: a site with one balanced group,
 * and "which backend answered" clients.
 *
 * @module
 */

import { proxySite, type TestBws } from "./bws.ts";

/** A proxy site in front of `members` (group "b") with the given method and extra TOML. */
export function balancedSite(
  members: { url: string; weight?: number }[],
  method: string,
  extra = "",
  server = "",
): string {
  const balancing = `
[sites.proxy.load_balancing]
method = "${method}"
`;
  return proxySite(members, balancing + extra, undefined, server);
}

/** GETs `url` and returns the id of the backend that answered (or `status:<n>`). */
export async function who(url: string, headers?: HeadersInit): Promise<string> {
  const res = await fetch(url, { headers });
  if (res.status !== 200) {
    await res.body?.cancel();
    return `status:${res.status}`;
  }
  await res.arrayBuffer();
  return res.headers.get("x-backend") ?? "?";
}

export function count(ids: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

/** One member's line of `GET /api/status` (`upstreams[].members[]`). */
export interface MemberStats {
  url: string;
  live: boolean;
  activeUp: boolean;
  inFlight: number;
  fails: number;
  requests: number;
  lastError: string;
}

/** Reads the members of every group from the management API (`[management] enabled`). */
export async function memberStats(bws: TestBws): Promise<MemberStats[]> {
  const addr = bws.handle.managementAddress;
  if (addr === null) throw new Error("Cannot read member stats: the management API is off");
  const res = await fetch(`http://${addr.hostname}:${addr.port}/api/status`);
  const status = await res.json() as { upstreams: { members: MemberStats[] }[] };
  return status.upstreams.flatMap((g) => g.members);
}

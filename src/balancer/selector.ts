/**
 * The selection contract every load-balancing policy implements, and the member shape it picks
 * from. Policies only choose; whether a member may be chosen is decided by one availability
 * predicate supplied by the caller (health lives in `src/health/`).
 *
 * @module
 */

import type { HostState } from "../health/host_state.ts";
import type { UpstreamTarget } from "../upstream/target.ts";

/** One upstream of a group: configuration plus the shared live state. */
export interface Member {
  readonly target: UpstreamTarget;
  /** Integer ≥ 1. */
  readonly weight: number;
  /** Live state shared across reloads through the registry. */
  readonly state: HostState;
  /** Position in the group, in file order. */
  readonly index: number;
}

/** Tells whether a member may take a request right now (health verdict). */
export type LivePredicate = (member: Member) => boolean;

/**
 * A load-balancing policy. One instance per group: it may keep state (counters, current
 * weights) that a reload is free to throw away.
 */
export interface Selector {
  /**
   * Picks a member for which `live` is true and which is not in `exclude`, or null when there
   * is none. Never returns an excluded member.
   *
   * @param members the group's members in file order
   * @param live the availability predicate
   * @param clientIp client address as resolved through trusted_proxies
   * @param exclude members already tried for this request
   */
  pick(
    members: readonly Member[],
    live: LivePredicate,
    clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null;
}

/** The one availability test every policy applies: live and not already tried. */
export function usable(m: Member, live: LivePredicate, exclude?: ReadonlySet<Member>): boolean {
  return live(m) && (exclude === undefined || !exclude.has(m));
}

/**
 * An upstream group: the members of one `[[sites.proxy.upstreams]]` name in one site, their
 * selection policy and their active health checker. Rebuilt on every reload; the members' live
 * state comes from the {@linkcode HostRegistry} and so survives.
 *
 * @module
 */

import type { LbMethod, UpstreamConfig } from "../config/types.ts";
import { type ActiveHealth, ActiveHealthChecker } from "../health/active.ts";
import { monotonicNow, type PassiveHealth } from "../health/host_state.ts";
import type { HostRegistry } from "../health/registry.ts";
import type { Logger } from "../log/types.ts";
import { parseUpstreamUrl } from "../upstream/target.ts";
import { createSelector } from "./create_selector.ts";
import type { Member, Selector } from "./selector.ts";

/** A member may take requests now (the clock is read only when one is ejected). */
const isLive = (m: Member): boolean => m.state.isLive();

export type { Member, Selector };

/** Options of {@linkcode UpstreamGroup}. */
export interface UpstreamGroupOptions {
  /** Site name (part of the state key and log fields). */
  readonly site: string;
  /** Group name. */
  readonly name: string;
  /** The group's entries in file order (at least one). */
  readonly upstreams: readonly UpstreamConfig[];
  readonly method: LbMethod;
  readonly healthCheck: ActiveHealth;
  readonly passiveHealth: PassiveHealth;
  readonly registry: HostRegistry;
  /** Receives health state changes. @default no logging */
  readonly logger?: Logger;
}

/**
 * The live state of one member, as {@linkcode UpstreamGroup.snapshot} reports it: the one shape
 * behind `ServerHandle.upstreams()`, `/api/status` `upstreams` and the `/metrics` member rows.
 */
export interface MemberSnapshot {
  readonly url: string;
  readonly weight: number;
  /** Would be picked now (active up and not passively ejected). */
  readonly live: boolean;
  readonly activeUp: boolean;
  /** Passively ejected now (before the half-open point). */
  readonly ejected: boolean;
  /** Requests being proxied to it now. */
  readonly inFlight: number;
  /** WebSocket sessions relayed to it now. */
  readonly webSockets: number;
  /** Passive failures inside the current `fail_timeout` window. */
  readonly fails: number;
  /** Last failure reason reported (passive or active), "" when none yet. */
  readonly lastError: string;
  /** Requests sent to it since start (survives reloads when the member is unchanged). */
  readonly requests: number;
}

/** The live state of one group: its name, policy and members. */
export interface GroupSnapshot {
  readonly name: string;
  readonly method: LbMethod;
  readonly members: readonly MemberSnapshot[];
}

/** The state key of a member: `${site}/${group}/${url}`. */
export function hostKey(site: string, group: string, url: string): string {
  return `${site}/${group}/${url}`;
}

/** Members, policy and health checking of one upstream group. */
export class UpstreamGroup {
  readonly site: string;
  readonly name: string;
  readonly method: LbMethod;
  readonly members: readonly Member[];
  /** Registry keys of the members (for `HostRegistry.retain` after a reload). */
  readonly keys: readonly string[];
  readonly #selector: Selector;
  readonly #checker: ActiveHealthChecker | null;

  /** @throws {TypeError} when an upstream URL is invalid or the group is empty */
  constructor(opts: UpstreamGroupOptions) {
    if (opts.upstreams.length === 0) {
      throw new TypeError(`Cannot build upstream group "${opts.name}": it has no members`);
    }
    this.site = opts.site;
    this.name = opts.name;
    this.method = opts.method;
    const keys: string[] = [];
    const seen = new Map<string, number>();
    this.members = Object.freeze(opts.upstreams.map((u, index): Member => {
      // The same URL listed twice gets its own state (and its own share of the traffic).
      let key = hostKey(opts.site, opts.name, u.url);
      const dup = seen.get(key) ?? 0;
      seen.set(key, dup + 1);
      if (dup > 0) key += `#${dup}`;
      keys.push(key);
      const state = opts.registry.get(key, opts.passiveHealth);
      return Object.freeze({
        target: parseUpstreamUrl(u.url),
        weight: Math.max(1, Math.floor(u.weight)),
        state,
        index,
      });
    }));
    this.keys = Object.freeze(keys);
    this.#selector = createSelector(opts.method, this.members);
    this.#checker = opts.healthCheck.enabled
      ? new ActiveHealthChecker({
        site: opts.site,
        group: opts.name,
        members: this.members,
        config: opts.healthCheck,
        logger: opts.logger,
      })
      : null;
  }

  /**
   * Picks a live member not in `exclude` (members already tried in this request), or null.
   * A half-open member (passive ejection over) that is picked takes its single probe slot.
   */
  pick(clientIp: string, exclude?: ReadonlySet<Member>): Member | null {
    const m = this.#selector.pick(this.members, isLive, clientIp, exclude);
    m?.state.claimProbe();
    return m;
  }

  /**
   * Starts active health checks. Call it when this group's plan goes live: the group then owns
   * its members' active verdict (results of an older group's checker still running are
   * ignored). With checks disabled it only clears an old "down" verdict. Idempotent.
   */
  start(): void {
    if (this.#checker) this.#checker.start();
    else for (const m of this.members) m.state.claimActive(null);
  }

  /** Stops timers and aborts in-flight checks; resolves when all stopped. */
  stop(): Promise<void> {
    return this.#checker?.stop() ?? Promise.resolve();
  }

  /** Current state of every member, for the admin API. */
  snapshot(): GroupSnapshot {
    const now = monotonicNow();
    return {
      name: this.name,
      method: this.method,
      members: this.members.map((m) => ({
        url: m.target.url,
        weight: m.weight,
        live: m.state.isLive(now),
        activeUp: m.state.activeUp,
        ejected: m.state.isEjected(now),
        inFlight: m.state.inFlight,
        webSockets: m.state.webSockets,
        fails: m.state.recentFailures(now),
        lastError: m.state.lastError,
        requests: m.state.totalRequests,
      })),
    };
  }
}

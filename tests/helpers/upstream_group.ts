/**
 * Test helpers for driving an upstream group directly, as the proxy does: group entries, health
 * settings, and a request loop (the backends are `backends.ts`'s).
 *
 * @module
 */

import type { UpstreamConfig } from "../../src/config/types.ts";
import type { ActiveHealth } from "../../src/health/active.ts";
import type { PassiveHealth } from "../../src/health/host_state.ts";
import type { Member, UpstreamGroup } from "../../src/balancer/group.ts";
import { errorText } from "../../src/log/error_text.ts";

/** Group entries for `urls` (weights default to 1). */
export function entries(name: string, urls: string[], weights: number[] = []): UpstreamConfig[] {
  return urls.map((url, i) => ({ name, url, weight: weights[i] ?? 1 }));
}

export const NO_CHECKS: ActiveHealth = Object.freeze({
  enabled: false,
  path: "/health",
  intervalMs: 30_000,
  timeoutMs: 5000,
  retries: 3,
  rise: 2,
  expectStatus: "2xx",
});

export const PASSIVE: PassiveHealth = Object.freeze({
  enabled: true,
  maxFails: 3,
  failTimeoutMs: 10_000,
});

/** Result of {@linkcode send}. */
export interface Sent {
  readonly member: Member | null;
  /** The id of the backend that answered, or "" when every try failed or nothing was live. */
  readonly id: string;
}

/**
 * Sends `GET path` through the group as the proxy does: pick, count in flight, report success
 * or failure, try another member after a connect failure (up to `attempts` further tries).
 */
export async function send(
  group: UpstreamGroup,
  clientIp = "127.0.0.1",
  attempts = 0,
  path = "/",
): Promise<Sent> {
  const tried = new Set<Member>();
  let member: Member | null = null;
  for (let i = 0; i <= attempts; i++) {
    member = group.pick(clientIp, tried);
    if (member === null) break;
    tried.add(member);
    member.state.inFlight++;
    try {
      const res = await fetch(member.target.url + path);
      await res.arrayBuffer();
      member.state.recordSuccess();
      return { member, id: res.headers.get("x-backend") ?? "" };
    } catch (err) {
      member.state.recordFailure(errorText(err));
    } finally {
      member.state.inFlight--;
    }
  }
  return { member: null, id: "" };
}

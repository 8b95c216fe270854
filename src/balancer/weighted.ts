/**
 * Smooth weighted round robin, as nginx does it: each pick adds every usable member's weight to
 * its current weight, takes the highest (first on ties), and subtracts the total from it.
 * Weights 3 and 1 give a a b a: exactly 3:1 over every 4 picks, interleaved, deterministic.
 *
 * @module
 */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** Smooth weighted round robin over the usable members. */
export class WeightedSelector implements Selector {
  readonly #weights: Int32Array;
  readonly #current: Float64Array;

  /** @param members the group's members; their weights are copied once here */
  constructor(members: readonly Member[]) {
    this.#weights = Int32Array.from(members, (m) => Math.max(1, Math.floor(m.weight)));
    this.#current = new Float64Array(members.length);
  }

  pick(
    members: readonly Member[],
    live: LivePredicate,
    _clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    const w = this.#weights;
    const cur = this.#current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < members.length; i++) {
      if (!usable(members[i], live, exclude)) continue;
      cur[i] += w[i];
      total += w[i];
      if (best < 0 || cur[i] > cur[best]) best = i;
    }
    if (best < 0) return null;
    cur[best] -= total;
    return members[best];
  }
}

/**
 * Least connections: the usable member with the fewest in-flight requests plus open
 * WebSockets, relative to its weight; ties go round robin.
 *
 * @module
 */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** Fewest `(inFlight + webSockets) / weight`; equal loads rotate. */
export class LeastConnectionsSelector implements Selector {
  #start = 0;

  pick(
    members: readonly Member[],
    live: LivePredicate,
    _clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    const n = members.length;
    let best: Member | null = null;
    let bestLoad = 0;
    let bestIdx = 0;
    for (let i = 0; i < n; i++) {
      const idx = (this.#start + i) % n;
      const m = members[idx];
      if (!usable(m, live, exclude)) continue;
      const load = m.state.inFlight + m.state.webSockets;
      // load / weight < bestLoad / best.weight, without division.
      if (best === null || load * best.weight < bestLoad * m.weight) {
        best = m;
        bestLoad = load;
        bestIdx = idx;
      }
    }
    if (best !== null) this.#start = (bestIdx + 1) % n;
    return best;
  }
}

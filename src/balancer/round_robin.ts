/** Round robin: cycles through the usable members in file order. @module */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** Cycles through usable members in order; skipped members do not shift the rotation. */
export class RoundRobinSelector implements Selector {
  #next = 0;

  pick(
    members: readonly Member[],
    live: LivePredicate,
    _clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    const n = members.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.#next + i) % n;
      const m = members[idx];
      if (usable(m, live, exclude)) {
        this.#next = (idx + 1) % n;
        return m;
      }
    }
    return null;
  }
}

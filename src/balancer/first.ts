/** First: the first usable member in file order (fail-over). @module */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** Always the first usable member in file order. */
export class FirstSelector implements Selector {
  pick(
    members: readonly Member[],
    live: LivePredicate,
    _clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    for (const m of members) if (usable(m, live, exclude)) return m;
    return null;
  }
}

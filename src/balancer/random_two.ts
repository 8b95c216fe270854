/**
 * Power of two choices: two distinct usable members at random, the one with fewer in-flight
 * requests wins (the first drawn on ties).
 *
 * @module
 */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** Random source returning a float in [0, 1). */
export type RandomSource = () => number;

/** Power of two choices on `inFlight`. */
export class RandomTwoSelector implements Selector {
  readonly #random: RandomSource;

  /** @param random the random source @default Math.random */
  constructor(random: RandomSource = Math.random) {
    this.#random = random;
  }

  pick(
    members: readonly Member[],
    live: LivePredicate,
    _clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    let count = 0;
    for (const m of members) if (usable(m, live, exclude)) count++;
    if (count === 0) return null;
    const r1 = Math.floor(this.#random() * count);
    if (count === 1) return nth(members, live, exclude, 0);
    let r2 = Math.floor(this.#random() * (count - 1));
    if (r2 >= r1) r2++;
    const a = nth(members, live, exclude, r1)!;
    const b = nth(members, live, exclude, r2)!;
    return b.state.inFlight < a.state.inFlight ? b : a;
  }
}

/** The k-th usable member (0-based) in file order. */
function nth(
  members: readonly Member[],
  live: LivePredicate,
  exclude: ReadonlySet<Member> | undefined,
  k: number,
): Member | null {
  for (const m of members) {
    if (!usable(m, live, exclude)) continue;
    if (k-- === 0) return m;
  }
  return null;
}

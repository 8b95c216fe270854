/**
 * Client-address affinity by rendezvous (highest random weight) hashing: every member scores
 * `hash(client, member)` and the highest usable score wins. Adding a member moves only the
 * clients for which the new member now scores highest (about 1/n of them), and removing or
 * skipping one moves only its own clients — unlike `hash % n`, which reshuffles almost all.
 *
 * @module
 */

import { type LivePredicate, type Member, type Selector, usable } from "./selector.ts";

/** 32-bit FNV-1a of a string's UTF-16 code units, starting from `seed`. */
export function fnv1a32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Murmur3's 32-bit finaliser: spreads every input bit over the output. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Rendezvous hashing of the client address over the usable members. */
export class IpHashSelector implements Selector {
  /** Per-member hash of its URL, precomputed at build. */
  readonly #memberHash: Uint32Array;

  /** @param members the group's members; their URLs are hashed once here */
  constructor(members: readonly Member[]) {
    this.#memberHash = Uint32Array.from(members, (m) => mix32(fnv1a32(m.target.url)));
  }

  pick(
    members: readonly Member[],
    live: LivePredicate,
    clientIp: string,
    exclude?: ReadonlySet<Member>,
  ): Member | null {
    const client = mix32(fnv1a32(clientIp));
    let best: Member | null = null;
    let bestScore = -1;
    for (let i = 0; i < members.length; i++) {
      const m = members[i];
      if (!usable(m, live, exclude)) continue;
      const score = mix32(client ^ this.#memberHash[i]);
      if (score > bestScore) {
        best = m;
        bestScore = score;
      }
    }
    return best;
  }
}

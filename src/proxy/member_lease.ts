/**
 * A member chosen for one request, owning that request's place in the member's in-flight count
 * (which least_connections and random_two read) until the response is over. Released exactly
 * once, however the request ends.
 *
 * @module
 */

import type { Member } from "../balancer/selector.ts";

/** One request's hold on a member. */
export class MemberLease {
  readonly member: Member;
  #held = true;

  /** Counts the request in `member`'s in-flight requests. */
  constructor(member: Member) {
    this.member = member;
    member.state.addInFlight(1);
  }

  /** Ends the hold (idempotent). */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.member.state.addInFlight(-1);
  }
}

/** Maps a configured `load_balancing.method` to its policy. @module */

import type { LbMethod } from "../config/types.ts";
import { FirstSelector } from "./first.ts";
import { IpHashSelector } from "./ip_hash.ts";
import { LeastConnectionsSelector } from "./least_connections.ts";
import { RandomTwoSelector } from "./random_two.ts";
import { RoundRobinSelector } from "./round_robin.ts";
import type { Member, Selector } from "./selector.ts";
import { WeightedSelector } from "./weighted.ts";

/**
 * Builds a fresh selector for `method` over `members` (precomputing what the policy needs).
 *
 * @throws {TypeError} for an unknown method
 */
export function createSelector(method: LbMethod, members: readonly Member[]): Selector {
  switch (method) {
    case "round_robin":
      return new RoundRobinSelector();
    case "weighted":
      return new WeightedSelector(members);
    case "least_connections":
      return new LeastConnectionsSelector();
    case "ip_hash":
      return new IpHashSelector(members);
    case "random_two":
      return new RandomTwoSelector();
    case "first":
      return new FirstSelector();
    default:
      throw new TypeError(`Cannot use load balancing method "${method}": unknown method`);
  }
}

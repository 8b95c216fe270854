import { describe, it } from "node:test";
import { expect } from "expect";
import type { LbMethod } from "../config/types.ts";
import { LB_METHODS } from "../config/types.ts";
import { HostState } from "../health/host_state.ts";
import { parseUpstreamUrl } from "../upstream/target.ts";
import { createSelector } from "./create_selector.ts";
import type { Member } from "./selector.ts";

const PASSIVE = { enabled: true, maxFails: 3, failTimeoutMs: 10_000 };

function pool(n: number, weights: number[] = []): Member[] {
  return Array.from({ length: n }, (_, i) => {
    const url = `http://10.0.0.${i + 1}:8080`;
    return {
      target: parseUpstreamUrl(url),
      weight: weights[i] ?? 1,
      state: new HostState(`s/g/${url}`, PASSIVE),
      index: i,
    };
  });
}

const IPS = Array.from({ length: 40 }, (_, i) => `192.0.2.${i}`);

/** Common behaviour every policy must have (one suite, one factory per policy). */
function runConformance(method: LbMethod): void {
  describe(`${method} selector conformance`, () => {
    it("returns only live members", () => {
      const members = pool(4, [1, 2, 3, 1]);
      const dead = new Set([members[0], members[2]]);
      const sel = createSelector(method, members);
      for (const ip of IPS) {
        const m = sel.pick(members, (c) => !dead.has(c), ip);
        expect(m).not.toBeNull();
        expect(dead.has(m!)).toBe(false);
      }
    });

    it("never returns an excluded member, even when it is live", () => {
      const members = pool(3);
      const sel = createSelector(method, members);
      const exclude = new Set([members[1]]);
      for (const ip of IPS) {
        const m = sel.pick(members, () => true, ip, exclude);
        expect(m === members[0] || m === members[2]).toBe(true);
      }
    });

    it("returns null when no member is live or all are excluded", () => {
      const members = pool(3);
      const sel = createSelector(method, members);
      expect(sel.pick(members, () => false, "192.0.2.1")).toBeNull();
      expect(sel.pick(members, () => true, "192.0.2.1", new Set(members))).toBeNull();
      const exclude = new Set([members[0]]);
      expect(sel.pick(members, (c) => c !== members[1] && c !== members[2], "x", exclude))
        .toBeNull();
    });

    it("uses the only usable member every time", () => {
      const members = pool(5, [5, 4, 3, 2, 1]);
      const sel = createSelector(method, members);
      for (const ip of IPS) {
        expect(sel.pick(members, (c) => c.index === 3, ip)).toBe(members[3]);
      }
    });

    it("comes back to a member once it is live again", () => {
      const members = pool(2);
      const sel = createSelector(method, members);
      const dead = new Set([members[0], members[1]]);
      expect(sel.pick(members, (c) => !dead.has(c), "192.0.2.7")).toBeNull();
      dead.delete(members[1]);
      expect(sel.pick(members, (c) => !dead.has(c), "192.0.2.7")).toBe(members[1]);
    });
  });
}

for (const method of LB_METHODS) runConformance(method);

describe("createSelector()", () => {
  it("rejects an unknown method", () => {
    expect(() => createSelector("sticky" as LbMethod, pool(1))).toThrow(
      /Cannot use load balancing method "sticky"/,
    );
  });
});

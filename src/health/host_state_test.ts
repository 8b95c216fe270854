import { describe, it } from "node:test";
import { expect } from "expect";
import { HostState } from "./host_state.ts";

const PASSIVE = { enabled: true, maxFails: 2, failTimeoutMs: 10_000 };

describe("HostState", () => {
  it("recordCheck() goes down after `retries` failures and up after `rise` passes", () => {
    const s = new HostState("s/g/u", PASSIVE);
    const me = {};
    s.claimActive(me);
    expect(s.recordCheck(me, false, 3, 2, "status 500")).toBeNull();
    expect(s.recordCheck(me, false, 3, 2)).toBeNull();
    expect(s.recordCheck(me, true, 3, 2)).toBeNull(); // a pass resets the failure streak
    expect(s.recordCheck(me, false, 3, 2)).toBeNull();
    expect(s.recordCheck(me, false, 3, 2)).toBeNull();
    expect(s.recordCheck(me, false, 3, 2)).toBe(false);
    expect(s.activeUp).toBe(false);
    expect(s.isLive()).toBe(false);
    expect(s.lastError).toBe("status 500");
    expect(s.recordCheck(me, true, 3, 2)).toBeNull();
    expect(s.recordCheck(me, false, 3, 2)).toBeNull(); // a failure resets the pass streak
    expect(s.recordCheck(me, true, 3, 2)).toBeNull();
    expect(s.recordCheck(me, true, 3, 2)).toBe(true);
    expect(s.isLive()).toBe(true);
  });

  it("isLive() is false during ejection, true once half-open, false after the probe is claimed", () => {
    const s = new HostState("s/g/u", PASSIVE);
    s.recordFailure("refused");
    s.recordFailure("reset");
    const t = performance.now();
    expect(s.isLive(t)).toBe(false);
    expect(s.isEjected(t)).toBe(true);
    expect(s.isLive(t + 10_001)).toBe(true);
    s.claimProbe(t + 10_001);
    expect(s.isLive(t + 10_002)).toBe(false);
    // An unanswered probe frees its slot after another fail_timeout.
    expect(s.isLive(t + 20_002)).toBe(true);
  });

  it("claimProbe() does nothing outside the half-open state", () => {
    const s = new HostState("s/g/u", PASSIVE);
    s.claimProbe();
    expect(s.isLive()).toBe(true);
  });

  it("configure() with passive health disabled lifts an ejection", () => {
    const s = new HostState("s/g/u", PASSIVE);
    s.recordFailure("a");
    s.recordFailure("b");
    expect(s.isLive()).toBe(false);
    s.configure({ ...PASSIVE, enabled: false });
    expect(s.isLive()).toBe(true);
    expect(s.totalFailures).toBe(2);
    expect(s.totalRequests).toBe(2);
  });
});

describe("HostState.claimActive()", () => {
  it("ignores results from a checker that lost the claim, and null clears a down verdict", () => {
    const s = new HostState("s/g/u", PASSIVE);
    const old = {};
    const next = {};
    s.claimActive(old);
    expect(s.recordCheck(old, false, 1, 1)).toBe(false);
    s.claimActive(next);
    expect(s.recordCheck(old, true, 1, 1)).toBeNull();
    expect(s.activeUp).toBe(false);
    expect(s.recordCheck(next, true, 1, 1)).toBe(true);
    expect(s.recordCheck(next, false, 1, 1)).toBe(false);
    s.claimActive(null);
    expect(s.activeUp).toBe(true);
    expect(s.recordCheck(next, false, 1, 1)).toBeNull();
    expect(s.isLive()).toBe(true);
  });

  it("`rise` active passes after a passive ejection end it early; older passes do not", () => {
    const s = new HostState("s/g/u", PASSIVE);
    const me = {};
    s.claimActive(me);
    // Checks were passing before the ejection: that alone must not lift it.
    s.recordCheck(me, true, 3, 2);
    s.recordCheck(me, true, 3, 2);
    s.recordFailure("refused");
    s.recordFailure("refused");
    expect(s.isEjected()).toBe(true);
    expect(s.recordCheck(me, true, 3, 2)).toBeNull();
    expect(s.isLive()).toBe(false);
    expect(s.recordCheck(me, false, 3, 2)).toBeNull(); // a failure restarts the count
    expect(s.recordCheck(me, true, 3, 2)).toBeNull();
    expect(s.isLive()).toBe(false);
    expect(s.recordCheck(me, true, 3, 2)).toBeNull();
    expect(s.isEjected()).toBe(false);
    expect(s.isLive()).toBe(true);
    expect(s.recentFailures()).toBe(0);
  });

  it("recordSuccess(true) from a deliberate probe ends an ejection; a plain late success not", () => {
    const s = new HostState("s/g/u", PASSIVE);
    s.recordFailure("refused");
    s.recordFailure("refused");
    s.recordSuccess();
    expect(s.isEjected()).toBe(true);
    s.recordSuccess(true);
    expect(s.isEjected()).toBe(false);
    expect(s.isLive()).toBe(true);
  });
});

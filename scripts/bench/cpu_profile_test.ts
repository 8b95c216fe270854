import { describe, it } from "node:test";
import { expect } from "expect";
import { selfTimes, summarizeCpuProfile } from "./cpu_profile.ts";

const node = (id: number, functionName: string, url = "", lineNumber = 0) => ({
  id,
  callFrame: { functionName, url, lineNumber },
});

describe("selfTimes", () => {
  it("sums sample time per function, largest first, with repo-relative files", () => {
    const profile = {
      nodes: [
        node(1, "(root)"),
        node(2, "handle", "file:///work/main/src/server/handle_request.ts", 9),
        node(3, "", "file:///work/main/src/upstream/client.ts", 41),
      ],
      samples: [2, 3, 2, 2, 1],
      timeDeltas: [100, 50, 100, 100, 50],
    };
    const times = selfTimes(profile);
    expect(times[0]).toEqual({
      frame: "handle (src/server/handle_request.ts:10)",
      micros: 300,
      share: 0.75,
    });
    expect(times.map((t) => t.frame)).toContain("(anonymous) (src/upstream/client.ts:42)");
    expect(summarizeCpuProfile(profile, 1)).toEqual([
      " 75.0%  handle (src/server/handle_request.ts:10)",
    ]);
  });
});

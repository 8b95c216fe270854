import { describe, it } from "node:test";
import { expect } from "expect";
import { busyByFile, selfTimes, summarizeCpuProfile } from "./cpu_profile.ts";

const node = (
  id: number,
  functionName: string,
  url = "",
  lineNumber = 0,
  children: number[] = [],
) => ({ id, children, callFrame: { functionName, url, lineNumber } });

describe("selfTimes", () => {
  it("sums sample time per function, largest first, with repo-relative files", () => {
    const profile = {
      nodes: [
        node(1, "(root)"),
        node(2, "handle", "file:///work/main/src/server/handle_request.ts", 9),
        node(3, "", "file:///work/main/src/upstream/client.ts", 41),
        node(4, "(idle)"),
      ],
      samples: [2, 3, 2, 2, 1, 4],
      timeDeltas: [100, 50, 100, 100, 50, 999],
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

describe("busyByFile", () => {
  it("charges runtime frames to the innermost project file that called them", () => {
    const profile = {
      nodes: [
        node(1, "(root)", "", 0, [2, 5]),
        node(2, "forward", "file:///work/main/src/proxy/forward.ts", 1, [3]),
        node(3, "write", "ext:deno_net/01_net.js", 1, [4]),
        node(4, "op_write"),
        node(5, "(garbage collector)"),
        node(6, "(idle)"),
      ],
      samples: [4, 4, 3, 5, 6],
      timeDeltas: [100, 100, 100, 100, 5000],
    };
    expect(busyByFile(profile).map((t) => [t.frame, t.share])).toEqual([
      ["src/proxy/forward.ts", 0.75],
      ["(runtime)", 0.25],
    ]);
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { resolveWorkerCount } from "./worker_count.ts";

describe("resolveWorkerCount", () => {
  it('takes a number as it is and "auto" as the cores', () => {
    expect(resolveWorkerCount(1, 8, "linux")).toEqual({ count: 1, note: null });
    expect(resolveWorkerCount(3, 8, "linux")).toEqual({ count: 3, note: null });
    expect(resolveWorkerCount("auto", 8, "linux")).toEqual({ count: 8, note: null });
    expect(resolveWorkerCount("auto", 0, "linux")).toEqual({ count: 1, note: null });
  });

  it("runs one thread, and says why, where the kernel does not spread a port's connections", () => {
    const r = resolveWorkerCount(4, 8, "darwin");
    expect(r.count).toBe(1);
    expect(r.note).toContain("only Linux");
    expect(resolveWorkerCount(1, 8, "windows")).toEqual({ count: 1, note: null });
  });
});

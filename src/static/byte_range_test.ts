import { describe, it } from "node:test";
import { expect } from "expect";
import { parseByteRange } from "./byte_range.ts";

describe("parseByteRange", () => {
  it("reads a-b, a- and -n, clamping the end", () => {
    expect(parseByteRange("bytes=0-9", 100)).toEqual({ kind: "partial", start: 0, end: 9 });
    expect(parseByteRange("bytes=90-", 100)).toEqual({ kind: "partial", start: 90, end: 99 });
    expect(parseByteRange("bytes=-10", 100)).toEqual({ kind: "partial", start: 90, end: 99 });
    expect(parseByteRange("bytes=-500", 100)).toEqual({ kind: "partial", start: 0, end: 99 });
    expect(parseByteRange("bytes=50-1000", 100)).toEqual({ kind: "partial", start: 50, end: 99 });
  });

  it("reports ranges outside the file as unsatisfiable", () => {
    expect(parseByteRange("bytes=100-", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseByteRange("bytes=200-300", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseByteRange("bytes=-0", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseByteRange("bytes=0-", 0)).toEqual({ kind: "unsatisfiable" });
  });

  it("ignores absent, malformed, foreign-unit and multi-range headers", () => {
    for (
      const h of [null, "bytes=5-1", "bytes=abc", "items=0-1", "bytes=-", "bytes=0-1,4-5", "0-1"]
    ) {
      expect(parseByteRange(h, 100)).toEqual({ kind: "full" });
    }
  });
});

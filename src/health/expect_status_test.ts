import { describe, it } from "node:test";
import { expect } from "expect";
import { parseExpectStatus } from "./expect_status.ts";

describe("parseExpectStatus()", () => {
  const cases: [string, number[], number[]][] = [
    ["2xx", [200, 204, 299], [199, 300, 404]],
    ["200", [200], [201, 204]],
    ["200-399", [200, 302, 399], [199, 400]],
    ["2xx,3xx", [200, 301, 399], [400, 500, 101]],
    [" 2XX , 404 ", [250, 404], [403, 500]],
  ];
  for (const [spec, yes, no] of cases) {
    it(`accepts ${yes} and rejects ${no} for "${spec}"`, () => {
      const ok = parseExpectStatus(spec);
      for (const s of yes) expect(ok(s)).toBe(true);
      for (const s of no) expect(ok(s)).toBe(false);
    });
  }

  it("rejects malformed items with a message naming them", () => {
    for (const bad of ["", "2x", "abc", "300-200", "200,", "6xx"]) {
      expect(() => parseExpectStatus(bad)).toThrow(/^Cannot parse expect_status/);
    }
  });
});

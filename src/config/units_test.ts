import { describe, it } from "node:test";
import { expect } from "expect";
import { parseDuration, parseExpectStatus, parseSize } from "./units.ts";
import { editDistance, suggestKey } from "./suggest.ts";

const size = (v: unknown) => {
  const r = parseSize(v);
  return r.ok ? r.value : r.message;
};

describe("parseSize", () => {
  it("accepts bytes and decimal and binary units", () => {
    expect(size(0)).toBe(0);
    expect(size(4096)).toBe(4096);
    expect(size("100B")).toBe(100);
    expect(size("10MB")).toBe(10_000_000);
    expect(size("1.5GB")).toBe(1_500_000_000);
    expect(size("2KB")).toBe(2000);
    expect(size("512KiB")).toBe(512 * 1024);
    expect(size("16MiB")).toBe(16 * 1024 * 1024);
    expect(size("1GiB")).toBe(1024 ** 3);
    expect(size("10 mb")).toBe(10_000_000);
    expect(size("123")).toBe(123);
  });
  it("rejects nonsense with a message naming the value", () => {
    expect(size("ten MB")).toContain('Cannot parse size "ten MB"');
    expect(size("10XB")).toContain("KiB");
    expect(size(-1)).toContain("≥ 0");
    expect(size(1.5)).toContain("whole number");
    expect(size(true)).toContain("expected a size");
  });
});

describe("parseDuration", () => {
  it("accepts integer and float seconds ≥ 0", () => {
    expect(parseDuration(0)).toEqual({ ok: true, value: 0 });
    expect(parseDuration(2.5)).toEqual({ ok: true, value: 2.5 });
  });
  it("rejects negatives and strings", () => {
    expect(parseDuration(-1).ok).toBe(false);
    expect(parseDuration("5s").ok).toBe(false);
  });
});

describe("parseExpectStatus", () => {
  it("parses classes, codes, ranges and lists", () => {
    expect(parseExpectStatus("2xx")).toEqual({ ok: true, value: [{ min: 200, max: 299 }] });
    expect(parseExpectStatus("200, 301-302,4xx")).toEqual({
      ok: true,
      value: [{ min: 200, max: 200 }, { min: 301, max: 302 }, { min: 400, max: 499 }],
    });
  });
  it("rejects garbage", () => {
    for (const bad of ["ok", "2x", "299-200", "700", ""]) {
      expect(parseExpectStatus(bad).ok).toBe(false);
    }
  });
});

describe("suggestKey", () => {
  it("finds close keys and ignores far ones", () => {
    expect(editDistance("strip_prefx", "strip_prefix")).toBe(1);
    expect(editDistance("ab", "ba")).toBe(1);
    expect(suggestKey("strip_prefx", ["path", "upstream", "strip_prefix", "websocket"])).toBe(
      "strip_prefix",
    );
    expect(suggestKey("upsteram", ["path", "upstream"])).toBe("upstream");
    expect(suggestKey("hostnmae", ["hostname", "hostnames"])).toBe("hostname");
    expect(suggestKey("strip-prefix", ["strip_prefix"])).toBe("strip_prefix");
    expect(suggestKey("colour", ["path", "upstream"])).toBeUndefined();
    expect(suggestKey("id", ["ip"])).toBeUndefined();
  });
});

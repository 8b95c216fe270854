import { describe, it } from "node:test";
import { expect } from "expect";
import { sameConfigValue } from "./same_value.ts";

describe("sameConfigValue", () => {
  it("compares nested objects and arrays by value, keys in any order", () => {
    expect(sameConfigValue({ a: 1, b: [1, { c: "x" }] }, { b: [1, { c: "x" }], a: 1 })).toBe(true);
    expect(sameConfigValue(Object.freeze({ a: null }), { a: null })).toBe(true);
  });

  it("tells apart values that differ in a key, an order, a type or a shape", () => {
    expect(sameConfigValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameConfigValue({ a: 1, b: undefined }, { a: 1, c: undefined })).toBe(false);
    expect(sameConfigValue([1, 2], [2, 1])).toBe(false);
    expect(sameConfigValue([1], { 0: 1 })).toBe(false);
    expect(sameConfigValue({ a: "1" }, { a: 1 })).toBe(false);
    expect(sameConfigValue(null, {})).toBe(false);
  });
});

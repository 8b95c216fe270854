import { describe, it } from "node:test";
import { expect } from "expect";
import { KeyTimeTable } from "./key_time_table.ts";

describe("KeyTimeTable", () => {
  it("stores and finds 100k keys as it grows, each with its own time", () => {
    const t = new KeyTimeTable(100_000);
    const key = (i: number) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
    for (let i = 0; i < 100_000; i++) expect(t.set(key(i), i + 0.5)).toBe(true);
    expect(t.size).toBe(100_000);
    for (let i = 0; i < 100_000; i += 7) expect(t.get(key(i))).toBe(i + 0.5);
    expect(t.get("10.200.0.1")).toBeNaN();
    // Updating a key keeps the count.
    t.set(key(5), 1);
    expect(t.get(key(5))).toBe(1);
    expect(t.size).toBe(100_000);
  });

  it("refuses a new key once full, still updates known ones", () => {
    const t = new KeyTimeTable(3);
    for (const k of ["a", "b", "c"]) expect(t.set(k, 1)).toBe(true);
    expect(t.full).toBe(true);
    expect(t.set("d", 1)).toBe(false);
    expect(t.get("d")).toBeNaN();
    expect(t.set("a", 2)).toBe(true);
    expect(t.get("a")).toBe(2);
  });

  it("clears in one step and is usable again", () => {
    const t = new KeyTimeTable(1000);
    for (let i = 0; i < 1000; i++) t.set(`k${i}`, i);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get("k1")).toBeNaN();
    for (let i = 0; i < 1000; i++) expect(t.set(`n${i}`, i)).toBe(true);
    expect(t.get("n999")).toBe(999);
    expect(t.get("k999")).toBeNaN();
  });

  it("tells apart keys that differ in one character, and the empty key", () => {
    const t = new KeyTimeTable(10);
    t.set("", 1);
    t.set("key-a", 2);
    t.set("key-b", 3);
    t.set("kez-a", 4);
    expect([t.get(""), t.get("key-a"), t.get("key-b"), t.get("kez-a")]).toEqual([1, 2, 3, 4]);
  });
});

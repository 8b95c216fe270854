import { describe, it } from "node:test";
import { expect } from "expect";
import { copyBytes, MAX_SMALL_COPY } from "./small_copies.ts";

describe("copyBytes", () => {
  it("copies stay intact when the source buffer is reused", () => {
    const src = new Uint8Array(64);
    const copies: Uint8Array[] = [];
    // Enough copies to cross several slabs.
    for (let i = 0; i < 2000; i++) {
      src.fill(i & 0xff);
      copies.push(copyBytes(src, 3, 3 + 1 + (i % 40)));
    }
    src.fill(0xee);
    for (let i = 0; i < copies.length; i++) {
      expect(copies[i].length).toBe(1 + (i % 40));
      expect(copies[i].every((b) => b === (i & 0xff))).toBe(true);
    }
  });

  it("writing into one copy leaves the next one alone", () => {
    const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const a = copyBytes(src, 0, 4);
    const b = copyBytes(src, 4, 8);
    a.fill(9);
    expect([...b]).toEqual([5, 6, 7, 8]);
  });

  it("a range past the small limit gets a buffer of its own", () => {
    const src = new Uint8Array(MAX_SMALL_COPY + 10).fill(7);
    const c = copyBytes(src, 5, MAX_SMALL_COPY + 10);
    expect(c.length).toBe(MAX_SMALL_COPY + 5);
    expect(c.byteOffset).toBe(0);
    expect(c.buffer.byteLength).toBe(MAX_SMALL_COPY + 5);
    src.fill(0);
    expect(c.every((x) => x === 7)).toBe(true);
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { decodeAscii, decodesDirectly } from "./ascii_text.ts";

describe("decodeAscii", () => {
  it("uses the runtime's decode binding on this Deno (the measured fast path)", () => {
    // If a Deno upgrade moves it, this fails: heads would quietly go back to TextDecoder.
    expect(decodesDirectly).toBe(true);
  });

  it("gives what TextDecoder gives for every ASCII byte, from a view into a larger buffer", () => {
    const all = new Uint8Array(200);
    for (let i = 0; i < 128; i++) all[36 + i] = i;
    const view = all.subarray(36, 164);
    const text = decodeAscii(view);
    expect(text).toBe(new TextDecoder().decode(view));
    expect(text.length).toBe(128);
    for (let i = 0; i < 128; i++) expect(text.charCodeAt(i)).toBe(i);
  });

  it("decodes an empty view and a 64 KiB head", () => {
    expect(decodeAscii(new Uint8Array(0))).toBe("");
    const big = new Uint8Array(64 * 1024).fill(0x61);
    expect(decodeAscii(big)).toBe("a".repeat(64 * 1024));
  });
});

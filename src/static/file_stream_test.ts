import { describe, it } from "node:test";
import { expect } from "expect";
import { readSmallRange } from "./file_stream.ts";

describe("readSmallRange", () => {
  it("reads exactly the range, returns null for a file shorter than it, throws for none", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_small_range_" });
    try {
      const path = `${dir}/f.bin`;
      await Deno.writeFile(path, new Uint8Array(1000).map((_, i) => i % 251));
      const bytes = readSmallRange(path, 10, 20)!.bytes;
      expect([...bytes]).toEqual(Array.from({ length: 20 }, (_, i) => (i + 10) % 251));
      expect(readSmallRange(path, 0, 1000)!.bytes.length).toBe(1000);
      expect(readSmallRange(path, 990, 20)).toBeNull();
      expect(() => readSmallRange(`${dir}/missing.bin`, 0, 1)).toThrow(Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

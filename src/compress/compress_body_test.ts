import { describe, it } from "node:test";
import { expect } from "expect";
import * as zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import type { CompressionAlgorithm } from "../config/types.ts";
import type { BodySource } from "../http1/types.ts";
import { compressBytes, compressSource } from "./compress_body.ts";
import { compressSync } from "./levels.ts";
import { firstDifference } from "../../tests/helpers/bytes.ts";

const ALGORITHMS: readonly CompressionAlgorithm[] = ["zstd", "br", "gzip"];
const enc = new TextEncoder();

function decompress(bytes: Uint8Array, algorithm: CompressionAlgorithm): Uint8Array {
  switch (algorithm) {
    case "gzip":
      return zlib.gunzipSync(bytes);
    case "br":
      return zlib.brotliDecompressSync(bytes);
    case "zstd":
      return zlib.zstdDecompressSync(bytes);
  }
}

function streamingDecompressor(algorithm: CompressionAlgorithm) {
  switch (algorithm) {
    case "gzip":
      return zlib.createGunzip();
    case "br":
      return zlib.createBrotliDecompress();
    case "zstd":
      return zlib.createZstdDecompress();
  }
}

/** Text that compresses like a real page: varied lines, repeated vocabulary. */
function sampleText(bytes: number): Uint8Array {
  const words = ["proxy", "upstream", "site", "route", "header", "body", "stream", "gzip", "bws"];
  let s = "";
  for (let i = 0; s.length < bytes; i++) {
    s += `${i}: ${words[i % 9]} ${words[(i * 7) % 9]} ${(i * 2654435761) % 1000003}\n`;
  }
  return enc.encode(s.slice(0, bytes));
}

/**
 * A source that hands out `data` in chunks through ONE reused buffer, as bws's readers do: a
 * consumer that keeps a chunk past the next read sees it overwritten.
 */
function reusedBufferSource(data: Uint8Array, chunk: number): BodySource & { cancelled: unknown } {
  const buf = new Uint8Array(chunk);
  let at = 0;
  const src = {
    cancelled: undefined as unknown,
    read() {
      buf.fill(0xee); // scribble over the previous chunk
      if (at >= data.length) return Promise.resolve(null);
      const n = Math.min(chunk, data.length - at);
      buf.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(buf.subarray(0, n));
    },
    cancel(reason?: unknown) {
      src.cancelled = reason ?? "cancelled";
    },
  };
  return src;
}

async function readAll(source: BodySource): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let c = await source.read(); c !== null; c = await source.read()) parts.push(c.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("compressSource", () => {
  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: decompresses to the exact bytes from a reused-buffer source`, async () => {
      const data = sampleText(300_001);
      for (const flushEachChunk of [false, true]) {
        for (const chunk of [1, 1000, 65_536]) {
          const input = chunk === 1 ? data.subarray(0, 5000) : data;
          const out = await readAll(
            compressSource(reusedBufferSource(input, chunk), algorithm, { flushEachChunk }),
          );
          if (chunk > 1) expect(out.length).toBeLessThan(input.length / 2);
          expect(firstDifference(decompress(out, algorithm), input)).toBe(-1);
        }
      }
    });
  }

  it("compresses an empty body to a valid empty stream", async () => {
    for (const algorithm of ALGORITHMS) {
      const out = await readAll(
        compressSource(reusedBufferSource(new Uint8Array(0), 10), algorithm),
      );
      expect(decompress(out, algorithm).length).toBe(0);
    }
  });

  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: with flushEachChunk, what arrived is readable before the next chunk`, async () => {
      let release: (() => void) | null = null;
      let reads = 0;
      const first = enc.encode("data: the first event of a slow upstream\n".repeat(20));
      const source: BodySource = {
        read() {
          reads++;
          if (reads === 1) return Promise.resolve(first);
          // the upstream is silent until released
          return new Promise((resolve) => (release = () => resolve(null)));
        },
        cancel() {},
      };
      const compressed = compressSource(source, algorithm, { flushEachChunk: true });
      const d = streamingDecompressor(algorithm);
      let text = "";
      d.on("data", (c: Uint8Array) => (text += new TextDecoder().decode(c)));
      const deadline = Date.now() + 2000;
      while (text.length < first.length && Date.now() < deadline) {
        const chunk = await Promise.race([
          compressed.read(),
          new Promise<"slow">((r) => setTimeout(() => r("slow"), 2000)),
        ]);
        if (chunk === "slow" || chunk === null) break;
        await new Promise((r) => d.write(chunk, r));
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(text).toBe(new TextDecoder().decode(first));
      expect(reads).toBe(1);
      // asking for more reads the source, which is still silent
      let settled = false;
      const more = compressed.read().then((c) => {
        settled = true;
        return c;
      });
      await new Promise((r) => setTimeout(r, 20));
      expect({ reads, settled }).toEqual({ reads: 2, settled: false });
      (release as unknown as () => void)();
      for (let c = await more; c !== null; c = await compressed.read()) d.write(c);
      d.end();
    });
  }

  it("rejects when the source fails, instead of ending cleanly", async () => {
    for (const algorithm of ALGORITHMS) {
      let n = 0;
      const source: BodySource = {
        read: () =>
          ++n < 3
            ? Promise.resolve(sampleText(10_000))
            : Promise.reject(new Error("upstream went away")),
        cancel() {},
      };
      await expect(readAll(compressSource(source, algorithm))).rejects.toThrow(
        "upstream went away",
      );
    }
  });

  it("cancel cancels the source and ends reading", async () => {
    const source = reusedBufferSource(sampleText(200_000), 1000);
    const compressed = compressSource(source, "gzip");
    await compressed.read();
    compressed.cancel(new Error("client gone"));
    expect(String(source.cancelled)).toContain("client gone");
    await expect(compressed.read()).rejects.toThrow("client gone");
    compressed.cancel(); // idempotent
  });
});

describe("compressBytes", () => {
  it("compresses small and large buffers whole, at the level asked", async () => {
    for (const algorithm of ALGORITHMS) {
      for (const size of [100, 65_536, 300_000]) {
        const data = sampleText(size);
        const out = await compressBytes(data, algorithm, 6);
        expect(firstDifference(decompress(out, algorithm), data)).toBe(-1);
      }
    }
    const data = sampleText(100_000);
    expect(compressSync(data, "gzip", 9).length).toBeLessThan(compressSync(data, "gzip", 1).length);
  });

  it("lets other work run while compressing a large buffer", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await compressBytes(sampleText(2_000_000), "br", 6);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(2);
  });
});

describe("memory", { skip: Deno.build.os !== "linux" }, () => {
  it("a 1 GiB body compresses with RSS growth well under 64 MiB (subprocess)", async () => {
    const probe = fileURLToPath(new URL("../../tests/helpers/memory_probe.ts", import.meta.url));
    for (const [algorithm, mib] of [["zstd", 1024], ["gzip", 256], ["br", 256]] as const) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--v8-flags=--expose-gc", probe, algorithm, String(mib)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      expect({ code: out.code, stderr }).toEqual({ code: 0, stderr: "" });
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      expect(r.decompressed).toBe(mib * 1024 * 1024);
      expect(r.compressed).toBeLessThan(r.decompressed / 4);
      expect({ algorithm, growthMiB: r.growthMiB }).toEqual({
        algorithm,
        growthMiB: expect.any(Number),
      });
      expect(r.growthMiB).toBeLessThan(48);
    }
  });
});

/**
 * Test fixture, run as its own process by src/compress/compress_body_test.ts: compresses `MiB`
 * mebibytes of generated text with `compressSource` (a reused 64 KiB input buffer, as bws's readers
 * hand out), decompresses the output as it comes to count it, and prints the peak RSS growth.
 * Without the decompression the growth is the same or smaller (zstd, 1 GiB: 14 MiB).
 *
 * Usage: deno run --v8-flags=--expose-gc tests/helpers/memory_probe.ts <zstd|br|gzip> <MiB>
 *
 * @module
 */

import * as zlib from "node:zlib";
import type { CompressionAlgorithm } from "../../src/config/types.ts";
import type { BodySource } from "../../src/http1/types.ts";
import { noteStreamedBytes } from "../../src/http1/gc_pacer.ts";
import { compressSource } from "../../src/compress/compress_body.ts";

const [algorithm, mib] = [Deno.args[0] as CompressionAlgorithm, Number(Deno.args[1])];
const total = mib * 1024 * 1024;
const CHUNK = 64 * 1024;

const template = new TextEncoder().encode(
  Array.from({ length: 2000 }, (_, i) => `{"id":${i},"name":"item ${i * 7919 % 1009}"}`).join(",")
    .padEnd(CHUNK, " ").slice(0, CHUNK),
);
const buf = new Uint8Array(CHUNK);
let sent = 0;
const source: BodySource = {
  read() {
    if (sent >= total) return Promise.resolve(null);
    buf.set(template);
    // a counter in every chunk, so no two chunks are the same
    new DataView(buf.buffer).setUint32((sent / CHUNK % 1000) * 64, sent / CHUNK);
    const n = Math.min(CHUNK, total - sent);
    sent += n;
    return Promise.resolve(buf.subarray(0, n));
  },
  cancel() {},
};

const decompressor = algorithm === "gzip"
  ? zlib.createGunzip()
  : algorithm === "br"
  ? zlib.createBrotliDecompress()
  : zlib.createZstdDecompress();
let decompressed = 0;
decompressor.on("data", (c: Uint8Array) => {
  decompressed += c.length;
  // the check's own garbage (1 GiB of decompressed buffers) is paced like bws paces its bodies
  noteStreamedBytes(c.length);
});
const ended = new Promise((resolve) => decompressor.on("end", resolve));

const rss = () => Deno.memoryUsage().rss;
(globalThis as { gc?: () => void }).gc?.();
const before = rss();
let peak = before;
let compressed = 0;
const body = compressSource(source, algorithm);
for (let n = 0;; n++) {
  const chunk = await body.read();
  if (chunk === null) break;
  compressed += chunk.length;
  await new Promise((resolve) => decompressor.write(chunk, resolve));
  if (n % 64 === 0) peak = Math.max(peak, rss());
}
decompressor.end();
await ended;
peak = Math.max(peak, rss());
console.log(JSON.stringify({
  compressed,
  decompressed,
  growthMiB: Math.round((peak - before) / 1024 / 1024 * 10) / 10,
}));

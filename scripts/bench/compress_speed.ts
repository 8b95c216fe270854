/**
 * Compression speed and ratio per algorithm and level, through bws's own code paths:
 * `compressSource` (streamed responses, 64 KiB input chunks) on a text corpus (this repository's
 * .ts and .md files) and a JSON corpus (generated API-style records), `compressSync` on a 16 KiB
 * file (one static response), and the cost of one Accept-Encoding negotiation. Numbers are for
 * comparing levels within one run: every configuration is timed in several interleaved rounds
 * and the fastest round counts, so a burst of load from other processes hits all of them alike.
 *
 * Usage: deno run -A --v8-flags=--expose-gc scripts/bench/compress_speed.ts [--rounds 5]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { CompressionAlgorithm } from "../../src/config/types.ts";
import type { BodySource } from "../../src/http1/types.ts";
import { compressSource } from "../../src/compress/compress_body.ts";
import { CACHED_LEVELS, compressSync, STREAM_LEVELS } from "../../src/compress/levels.ts";
import { negotiate, Negotiator } from "../../src/compress/negotiate.ts";

const { rounds } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "5" } },
}).values;
const ROUNDS = Math.max(1, Number(rounds));
/** Time spent on one configuration in one round. */
const SLICE_MS = 150;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const LEVELS: Record<CompressionAlgorithm, number[]> = {
  gzip: [1, 2, 3, 4, 5, 6],
  br: [1, 2, 3, 4, 5, 6],
  zstd: [1, 2, 3, 6, 9],
};

function textCorpus(): Uint8Array {
  const files = new TextDecoder().decode(
    new Deno.Command("git", { args: ["-C", ROOT, "ls-files", "*.ts", "*.md"] }).outputSync()
      .stdout,
  ).trim().split("\n");
  return new TextEncoder().encode(files.map((f) => Deno.readTextFileSync(ROOT + f)).join("\n"));
}

/** API-style JSON: ids, names, emails, dates, numbers and sentences from the text's words. */
function jsonCorpus(text: Uint8Array, bytes: number): Uint8Array {
  const words = new TextDecoder().decode(text).split(/\W+/).filter((w) => w.length > 2);
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const word = () => words[Math.floor(rnd() * words.length)];
  const items: unknown[] = [];
  let size = 0;
  for (let id = 1; size < bytes; id++) {
    const item = {
      id,
      uuid: crypto.randomUUID(),
      name: `${word()} ${word()}`,
      email: `${word().toLowerCase()}${id}@example.com`,
      active: rnd() < 0.7,
      score: Math.round(rnd() * 10000) / 100,
      created: new Date(1.7e12 + Math.floor(rnd() * 3e10)).toISOString(),
      tags: Array.from({ length: Math.floor(rnd() * 4) }, word),
      address: { city: word(), zip: String(Math.floor(rnd() * 90000) + 10000) },
      note: Array.from({ length: 4 + Math.floor(rnd() * 12) }, word).join(" "),
    };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return new TextEncoder().encode(JSON.stringify(items));
}

function chunked(bytes: Uint8Array, size = 65536): BodySource {
  let at = 0;
  return {
    read: () => {
      if (at >= bytes.length) return Promise.resolve(null);
      const c = bytes.subarray(at, at + size);
      at += c.length;
      return Promise.resolve(c);
    },
    cancel: () => {},
  };
}

async function streamed(bytes: Uint8Array, algorithm: CompressionAlgorithm, level: number) {
  const body = compressSource(chunked(bytes), algorithm, { level });
  let out = 0;
  for (let c = await body.read(); c !== null; c = await body.read()) out += c.length;
  return out;
}

/** One timed slice: the mean time of the calls that fit in SLICE_MS (at least 2). */
async function slice(f: () => Promise<number> | number): Promise<{ ms: number; out: number }> {
  const t0 = performance.now();
  let n = 0;
  let out = 0;
  while (performance.now() - t0 < SLICE_MS || n < 2) {
    out = await f();
    n++;
  }
  return { ms: (performance.now() - t0) / n, out };
}

/** A configuration to time: its label and what one call does (returns the output size). */
interface Case {
  readonly algorithm: CompressionAlgorithm;
  readonly level: number;
  readonly run: readonly (() => Promise<number> | number)[];
  best: { ms: number; out: number }[];
}

const text = textCorpus();
const json = jsonCorpus(text, text.length);
const small = text.subarray(0, 16 * 1024);
console.log(
  `corpora: text ${(text.length / 1e6).toFixed(2)} MB (repo .ts/.md), json ` +
    `${(json.length / 1e6).toFixed(2)} MB (generated); small file 16 KiB of text\n`,
);
const cases: Case[] = [];
for (const algorithm of ["zstd", "br", "gzip"] as const) {
  for (const level of LEVELS[algorithm]) {
    cases.push({
      algorithm,
      level,
      run: [
        () => streamed(text, algorithm, level),
        () => streamed(json, algorithm, level),
        () => compressSync(small, algorithm, level).length,
      ],
      best: [],
    });
  }
}
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    for (let k = 0; k < c.run.length; k++) {
      const r = await slice(c.run[k]);
      if (c.best[k] === undefined || r.ms < c.best[k].ms) c.best[k] = r;
    }
  }
}
console.log(`fastest of ${ROUNDS} interleaved rounds`);
console.log("algo level | text MB/s ratio | json MB/s ratio | 16 KiB one-shot µs ratio");
for (const { algorithm, level, best: [t, j, s] } of cases) {
  {
    const mark = [
      STREAM_LEVELS[algorithm] === level ? "stream" : "",
      CACHED_LEVELS[algorithm] === level ? "cached" : "",
    ].filter(Boolean).join(",");
    console.log(
      `${algorithm.padEnd(4)} ${String(level).padStart(5)} | ` +
        `${(text.length / t.ms / 1e3).toFixed(0).padStart(9)} ${
          (text.length / t.out).toFixed(2).padStart(5)
        } | ` +
        `${(json.length / j.ms / 1e3).toFixed(0).padStart(9)} ${
          (json.length / j.out).toFixed(2).padStart(5)
        } | ` +
        `${(s.ms * 1000).toFixed(0).padStart(17)} ${
          (small.length / s.out).toFixed(2).padStart(5)
        }` +
        (mark ? `  <- ${mark}` : ""),
    );
  }
}

console.log("\nflushing after every chunk (proxied bodies), text, stream levels: ratio");
for (const algorithm of ["zstd", "br", "gzip"] as const) {
  const row: string[] = [];
  for (
    const [size, flush] of [[65536, false], [65536, true], [16384, true], [1024, true]] as const
  ) {
    const body = compressSource(chunked(text, size), algorithm, { flushEachChunk: flush });
    let out = 0;
    for (let c = await body.read(); c !== null; c = await body.read()) out += c.length;
    row.push(
      `${flush ? `${size / 1024} KiB chunks` : "no flush"} ${(text.length / out).toFixed(2)}`,
    );
  }
  console.log(`${algorithm.padEnd(4)}: ${row.join(", ")}`);
}

const headers = [
  "gzip, deflate, br, zstd",
  "gzip, deflate, br",
  "gzip, deflate",
  "br;q=1.0, gzip;q=0.8, *;q=0.1",
];
const ALL = ["zstd", "br", "gzip"] as const;
const N = 200_000;
const neg = new Negotiator(ALL);
let sink = 0;
let t0 = performance.now();
for (let i = 0; i < N; i++) sink += neg.negotiate(headers[i & 3]).length;
const cachedNs = (performance.now() - t0) / N * 1e6;
t0 = performance.now();
for (let i = 0; i < N; i++) sink += negotiate(headers[i & 3], ALL).length;
const parsedNs = (performance.now() - t0) / N * 1e6;
console.log(
  `\nnegotiation per call: ${cachedNs.toFixed(0)} ns from the per-header map, ` +
    `${parsedNs.toFixed(0)} ns parsed every time (${sink > 0 ? "ok" : ""})`,
);

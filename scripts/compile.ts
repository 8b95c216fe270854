/**
 * `deno task compile [--target TRIPLE | --all]`: builds the single `bws` executable into dist/
 * with `deno compile`, the permissions bws needs and the example configs embedded.
 *
 * `deno compile` downloads the `denort` runtime for the target unless `DENORT_BIN` points at one.
 *
 * @module
 */

import { parseArgs } from "node:util";

export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * Runtime features the binary needs, as in deno.json's "unstable": `net` lets a certificate
 * swap hand the port over with reusePort; `no-legacy-abort` makes a request's signal abort only
 * when the client goes away (not after every successful response).
 */
export const UNSTABLE = ["--unstable-net", "--unstable-no-legacy-abort"];

/**
 * V8 flags baked into the binary: `--expose-gc` lets bws run a minor GC every few MiB of
 * streamed body, which bounds the memory big downloads hold (src/http1/gc_pacer.ts).
 */
export const V8_FLAGS = ["--v8-flags=--expose-gc"];

/** The permissions the binary runs with (no prompts at run time). */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
];

/** The `deno compile` arguments for one target (or the host when `target` is undefined). */
export function compileArgs(target: string | undefined, outDir = "dist"): string[] {
  const name = target ? `bws-${target}${target.includes("windows") ? ".exe" : ""}` : "bws";
  return [
    "compile",
    ...PERMISSIONS,
    ...UNSTABLE,
    ...V8_FLAGS,
    "--include",
    "examples",
    // Started with `new Worker(url)`, which deno compile does not follow by itself.
    "--include",
    "src/edge/bcrypt_worker.ts",
    "--include",
    "src/workers/worker_main.ts",
    ...(target ? ["--target", target] : []),
    "--output",
    `${outDir}/${name}`,
    "cli.ts",
  ];
}

const USAGE = `Usage: deno task compile [--target TRIPLE | --all] [--out DIR]
  (no option)      build dist/bws for this machine
  --target TRIPLE  one of: ${TARGETS.join(", ")}
  --all            every target above
  --out DIR        output directory (default dist)`;

if (import.meta.main) {
  let values: { target?: string; all?: boolean; out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string" },
        all: { type: "boolean" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    console.error(`Cannot compile bws: ${(err as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (values.target !== undefined && !(TARGETS as readonly string[]).includes(values.target)) {
    console.error(`Cannot compile bws for "${values.target}": unknown target\n${USAGE}`);
    Deno.exit(2);
  }
  const targets: (string | undefined)[] = values.all ? [...TARGETS] : [values.target];
  for (const t of targets) {
    const args = compileArgs(t, values.out ?? "dist");
    console.log(`deno ${args.join(" ")}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "inherit",
    })
      .output();
    if (code !== 0) {
      console.error(`Cannot compile bws for ${t ?? "this machine"}: deno compile exited ${code}`);
      Deno.exit(code);
    }
  }
}

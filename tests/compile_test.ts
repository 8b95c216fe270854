import { describe, it } from "node:test";
import { expect } from "expect";
import { compileArgs, TARGETS } from "../scripts/compile.ts";

const denort = Deno.env.get("DENORT_BIN");
const SKIP_REASON = "DENORT_BIN is not set: deno compile cannot download denort here";
if (!denort) console.log(`compiled-binary test skipped: ${SKIP_REASON}`);

describe("deno task compile", () => {
  it("builds every release target with the runtime permissions and embedded examples", () => {
    for (const t of TARGETS) {
      const args = compileArgs(t, "out");
      expect(args).toContain("--allow-net");
      expect(args).toContain("--allow-read");
      expect(args).toContain("--unstable-net");
      expect(args).toContain("--unstable-no-legacy-abort");
      expect(args).toContain("--v8-flags=--expose-gc");
      // Modules started as worker threads are embedded too.
      for (const module of ["src/edge/bcrypt_worker.ts", "src/workers/worker_main.ts"]) {
        expect(args[args.indexOf(module) - 1]).toBe("--include");
      }
      expect(args.slice(args.indexOf("--target"), args.indexOf("--target") + 2)).toEqual([
        "--target",
        t,
      ]);
      expect(args.at(-1)).toBe("cli.ts");
      expect(args[args.indexOf("--output") + 1]).toBe(
        `out/bws-${t}${t.includes("windows") ? ".exe" : ""}`,
      );
    }
  });

  it("prints usage for --help and refuses an unknown target or option before compiling", async () => {
    const script = new URL("../scripts/compile.ts", import.meta.url).pathname;
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
    };
    const help = await run("--help");
    expect(help.code).toBe(0);
    expect(help.text).toContain("Usage: deno task compile");
    const target = await run("--target", "riscv-nope");
    expect(target.code).toBe(2);
    expect(target.text).toContain('Cannot compile bws for "riscv-nope": unknown target');
    const option = await run("--bogus");
    expect(option.code).toBe(2);
    expect(option.text).toContain("Cannot compile bws: Unknown option '--bogus'");
  });

  it(
    "produces a binary that checks a config and prints its version",
    { skip: denort ? false : SKIP_REASON },
    async () => {
      const out = await Deno.makeTempDir();
      try {
        const build = await new Deno.Command(Deno.execPath(), {
          args: compileArgs(undefined, out),
          stdout: "piped",
          stderr: "piped",
        }).output();
        expect(build.code).toBe(0);
        const version = await new Deno.Command(`${out}/bws`, {
          args: ["--version"],
          stdout: "piped",
        }).output();
        expect(new TextDecoder().decode(version.stdout)).toMatch(/^bws \d+\.\d+\.\d+/);
        const check = await new Deno.Command(`${out}/bws`, {
          args: ["check", "-c", "examples/complete.toml"],
          stdout: "piped",
          stderr: "piped",
        }).output();
        expect(check.code).toBe(0);
        // server.workers = 2: the worker module is inside the binary.
        await Deno.mkdir(`${out}/www`);
        await Deno.writeTextFile(`${out}/www/index.html`, "from a worker\n");
        await Deno.writeTextFile(
          `${out}/bws.toml`,
          `[server]\nworkers = 2\n\n[[sites]]\nname = "w"\nport = 0\nbind = "127.0.0.1"\n` +
            `static_dir = "www"\n`,
        );
        const child = new Deno.Command(`${out}/bws`, {
          args: ["-c", `${out}/bws.toml`],
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
        try {
          let stderr = "";
          let port = "";
          const deadline = Date.now() + 20_000;
          while (!port && Date.now() < deadline) {
            const { value, done } = await reader.read();
            if (done) break;
            stderr += value;
            port = stderr.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1] ?? "";
          }
          expect(port).not.toBe("");
          const res = await fetch(`http://127.0.0.1:${port}/`);
          expect(await res.text()).toBe("from a worker\n");
        } finally {
          child.kill("SIGTERM");
          await reader.cancel().catch(() => {});
          await child.status;
        }
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  );
});

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
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  );
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { parseCliArgs } from "./args.ts";

describe("parseCliArgs", () => {
  it("runs with the default lookup, or the given config", () => {
    expect(parseCliArgs([])).toEqual({
      kind: "run",
      configPath: undefined,
      watch: false,
      verbose: false,
    });
    expect(parseCliArgs(["-c", "a.toml", "--watch", "-v"])).toEqual({
      kind: "run",
      configPath: "a.toml",
      watch: true,
      verbose: true,
    });
    expect(parseCliArgs(["--config=b.toml"])).toMatchObject({ kind: "run", configPath: "b.toml" });
  });

  it("checks with `check` or --dry-run, options before or after", () => {
    const want = { kind: "check", configPath: "a.toml", verbose: false };
    expect(parseCliArgs(["check", "-c", "a.toml"])).toEqual(want);
    expect(parseCliArgs(["-c", "a.toml", "check"])).toEqual(want);
    expect(parseCliArgs(["--dry-run", "--config", "a.toml"])).toEqual(want);
    expect(parseCliArgs(["check"])).toEqual({ ...want, configPath: undefined });
  });

  it("serves a directory on 8080 or the given port", () => {
    expect(parseCliArgs(["public"])).toEqual({
      kind: "static",
      dir: "public",
      port: 8080,
      bind: "0.0.0.0",
      verbose: false,
    });
    expect(parseCliArgs(["public", "-p", "0", "-b", "127.0.0.1"])).toMatchObject({
      port: 0,
      bind: "127.0.0.1",
    });
    expect(parseCliArgs(["--port", "9000", "site"])).toMatchObject({ dir: "site", port: 9000 });
  });

  it("help and version win over everything else", () => {
    expect(parseCliArgs(["-c", "x", "--help"])).toEqual({ kind: "help" });
    expect(parseCliArgs(["-h"])).toEqual({ kind: "help" });
    expect(parseCliArgs(["--version"])).toEqual({ kind: "version" });
    expect(parseCliArgs(["-V"])).toEqual({ kind: "version" });
  });

  it("reports usage errors", () => {
    const cases: [string[], string][] = [
      [["--frobnicate"], "unknown option --frobnicate"],
      [["-x"], "unknown option -x"],
      [["-c"], "option -c, --config needs a value"],
      [["dir", "-p", "http"], 'Cannot use port "http"'],
      [["dir", "-p", "70000"], 'Cannot use port "70000"'],
      [["-p", "80"], "need a DIR"],
      [["dir", "-c", "x.toml"], "either DIR or --config"],
      [["a", "b"], 'unexpected argument "b"'],
      [["check", "extra"], 'unexpected argument "extra"'],
      [["check", "--watch"], "--watch cannot be combined"],
      [["dir", "--watch"], "--watch needs a config file"],
    ];
    for (const [argv, message] of cases) {
      const r = parseCliArgs(argv);
      expect(r.kind).toBe("usage-error");
      expect(r.kind === "usage-error" && r.message).toContain(message);
    }
  });
});

/**
 * `cli.ts` as a user runs it: a real subprocess, real files, real listeners on loopback.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TestPki } from "./helpers/test_pki.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../examples/", import.meta.url));
const tmp = Deno.makeTempDirSync({ prefix: "bws_cli_test_" });
after(() => Deno.removeSync(tmp, { recursive: true }));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  args: string[],
  cwd = tmp,
  opts: { env?: Record<string, string>; permissions?: string[] } = {},
): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...(opts.permissions ?? ["-A"]), CLI, ...args],
    cwd,
    stdin: "null",
    env: { NO_COLOR: "1", ...opts.env },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A running `bws` whose stderr can be awaited line by line. */
class Running {
  readonly child: Deno.ChildProcess;
  stderr = "";
  exited = false;
  readonly #done: Promise<void>;
  /** `deno` runs `command` + `args` (by default the command is `cli.ts` with every permission). */
  constructor(args: string[], cwd = tmp, command = ["run", "-A", CLI]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...command, ...args],
      cwd,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child = child;
    child.status.then(() => (this.exited = true));
    this.#done = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.stderr += chunk;
      }
    })();
  }
  /** Waits until stderr matches `re` (bounded by `ms`). */
  async waitFor(re: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (this.exited) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (this.exited) await this.#done; // all of stderr, for the message
    const why = this.exited ? "bws exited" : "timed out";
    throw new Error(`${why} waiting for ${re}; stderr so far:\n${this.stderr}`);
  }
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
    const { code } = await this.child.status;
    await this.#done;
    return code;
  }
}

function write(name: string, text: string): string {
  const path = join(tmp, name);
  Deno.mkdirSync(join(path, ".."), { recursive: true });
  Deno.writeTextFileSync(path, text);
  return path;
}

const siteToml = (port: number, extra = "") =>
  `[[sites]]
name = "web"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"
static_dir = "www"
${extra}`;

describe("bws --version, --help and usage errors", () => {
  it("prints the version from deno.json", async () => {
    const version = JSON.parse(
      Deno.readTextFileSync(fileURLToPath(new URL("../deno.json", import.meta.url))),
    ).version;
    const r = await run(["--version"]);
    expect(r).toMatchObject({ code: 0, stdout: `bws ${version}\n` });
  });

  it("prints usage with --help", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
    expect(r.stdout).toContain("bws check");
  });

  it("exits 2 on an unknown flag or a bad port", async () => {
    const r = await run(["--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --frobnicate");
    expect((await run([".", "-p", "http"])).code).toBe(2);
  });

  it("exits 2 with usage when there is no config to find", async () => {
    const empty = join(tmp, "empty");
    Deno.mkdirSync(empty);
    const r = await run([], empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("neither ./bws.toml nor ./config.toml exists");
    expect(r.stderr).toContain("Usage:");
  });
});

describe("bws check", () => {
  it("prints the summary and exits 0 for every seed example", async () => {
    for (
      const f of [
        "basic.toml",
        "complete.toml",
        "high_availability.toml",
        "ssl_termination.toml",
        "snippets.toml",
        "demo.toml",
      ]
    ) {
      const r = await run(["check", "-c", EXAMPLES + f]);
      expect({ f, code: r.code, stderr: r.stderr }).toMatchObject({ f, code: 0 });
      expect(r.stdout).toContain("listeners:");
      expect(r.stdout).toContain(`${EXAMPLES}${f}: OK`);
    }
    const r = await run(["--dry-run", "--config", EXAMPLES + "complete.toml"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("route /api/ → api-cluster");
    expect(r.stderr).toContain("warning: static_dir");
  });

  it("prints every error with file, line, column and key path, and exits 1", async () => {
    const path = write(
      "bad.toml",
      `[[sites]]
name = "a"
port = 99999
static_dir = "www"

[sites.proxy]
enabled = true

[[sites.proxy.routes]]
path = "/api/"
upstream = "none"
strip_prefx = true
`,
    );
    const r = await run(["check", "-c", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${path}:3:1: sites[0].port: Cannot use 99999: must be 0..65535`);
    expect(r.stderr).toContain(
      `${path}:11:1: sites[0].proxy.routes[0].upstream: Cannot route to upstream "none"`,
    );
    expect(r.stderr).toContain(
      `${path}:12:1: sites[0].proxy.routes[0].strip_prefx: unknown key \`strip_prefx\``,
    );
    expect(r.stderr).toContain("did you mean `strip_prefix`?");
    expect(r.stderr).toContain("bws: 3 errors in config");
  });

  it("reports a TOML syntax error and an unreadable file with exit 1", async () => {
    const path = write("syntax.toml", `[[sites]]\nname = "a\n`);
    const r = await run(["check", "-c", path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${path}:2:\\d+: Cannot parse TOML`));
    const missing = await run(["check", "-c", join(tmp, "missing.toml")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Cannot read config file "${join(tmp, "missing.toml")}"`);
  });

  it("reports a missing cert_file, key_file and log directory with key and line, exit 1", async () => {
    const path = write(
      "missing-files/bws.toml",
      `[logging]
output = "file"
file_path = "logs/bws.log"

${siteToml(0)}
[sites.ssl]
enabled = true
cert_file = "tls/site.crt"
key_file = "tls/site.key"
`,
    );
    const dir = join(tmp, "missing-files");
    Deno.mkdirSync(join(dir, "www"));
    const r = await run(["check", "-c", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(
      `${path}:3:1: logging.file_path: Cannot open log file "${dir}/logs/bws.log": ` +
        `directory "${dir}/logs" does not exist`,
    );
    expect(r.stderr).toContain(
      `${path}:14:1: sites[0].ssl.cert_file: Cannot load certificate "${dir}/tls/site.crt": ` +
        "file not found",
    );
    expect(r.stderr).toContain(
      `${path}:15:1: sites[0].ssl.key_file: Cannot load key "${dir}/tls/site.key": file not found`,
    );
    expect(r.stderr).toContain("bws: 3 errors in config");
    // check has no side effects: the log directory is still not there
    expect(() => Deno.statSync(join(dir, "logs"))).toThrow(Deno.errors.NotFound);

    // running it reports the same errors together, instead of failing on the first one
    const started = await run(["-c", path]);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain("sites[0].ssl.cert_file: Cannot load certificate");
    expect(started.stderr).toContain("logging.file_path: Cannot open log file");
    expect(started.stderr).not.toContain("listening on");
  });

  it("reads and parses the certificate files as a start does", async () => {
    const pki = await TestPki.create();
    try {
      const good = await pki.issue("localhost", ["DNS:localhost"]);
      const other = await pki.issue("other", ["DNS:other.test"]);
      const expired = await pki.issue("old", ["DNS:localhost"], {
        start: "20200101000000Z",
        end: "20200201000000Z",
      });
      Deno.mkdirSync(join(tmp, "certs/www"), { recursive: true });
      Deno.mkdirSync(join(tmp, "certs/logs"));
      const config = (cert: string, key: string) =>
        write(
          "certs/bws.toml",
          `[logging]\noutput = "file"\nfile_path = "logs/bws.log"\n\n${siteToml(0)}` +
            `[sites.ssl]\nenabled = true\ncert_file = "${cert}"\nkey_file = "${key}"\n`,
        );

      let r = await run(["check", "-c", config(good.certFile, good.keyFile)]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(r.stdout).toContain(`tls: ${good.certFile} + ${good.keyFile}`);
      // the log file a start would create is not created by check
      expect(() => Deno.statSync(join(tmp, "certs/logs/bws.log"))).toThrow(Deno.errors.NotFound);

      r = await run(["check", "-c", config(good.certFile, other.keyFile)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /:14:1: sites\[0\]\.ssl\.key_file: .*key does not match certificate/,
      );

      r = await run(["check", "-c", config(good.keyFile, good.keyFile)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/:13:1: sites\[0\]\.ssl\.cert_file: .*not a PEM certificate/);

      r = await run(["check", "-c", config(expired.certFile, expired.keyFile)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `sites[0].ssl.cert_file: Cannot load certificate "${expired.certFile}": ` +
          "certificate expired on 2020-02-01T00:00:00.000Z",
      );
    } finally {
      await pki.remove();
    }
  });

  it("substitutes ${NAME} from the environment and names a missing variable", async () => {
    const dir = join(tmp, "env-vars");
    Deno.mkdirSync(join(dir, "www"), { recursive: true });
    const path = write(
      "env-vars/bws.toml",
      `[management]
enabled = true
port = "\${BWS_TEST_MGMT_PORT:-7655}"
api_key = "\${BWS_TEST_API_KEY}"

${siteToml(0, 'hostnames = ["\${BWS_TEST_HOST}", "b.example.com"]\n')}`,
    );
    // as `deno task check` runs it: read and env permissions only
    const permissions = ["--allow-read", "--allow-env"];
    const env = { BWS_TEST_API_KEY: "k", BWS_TEST_HOST: "a.example.com" };
    let r = await run(["check", "-c", path], dir, { env, permissions });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain('site "web": localhost, a.example.com, b.example.com');
    expect(r.stdout).toContain("management: http://127.0.0.1:7655 (X-API-Key required)");

    r = await run(["check", "-c", path], dir, { env: { BWS_TEST_HOST: "a.example.com" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${path}:4:1: management.api_key: Cannot substitute \${BWS_TEST_API_KEY}: environment ` +
        "variable BWS_TEST_API_KEY is not set",
    );
    expect(r.stderr).toContain("bws: 1 error in config");

    // without --allow-env the variable cannot be read: said so, per key
    r = await run(["check", "-c", path], dir, { env, permissions: ["--allow-read"] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${path}:4:1: management.api_key: Cannot read environment variable BWS_TEST_API_KEY: ` +
        "bws runs without --allow-env",
    );
  });

  it("finds ./bws.toml, else ./config.toml", async () => {
    const dir = join(tmp, "lookup");
    Deno.mkdirSync(dir);
    Deno.writeTextFileSync(join(dir, "config.toml"), siteToml(0).replace('"web"', '"from-config"'));
    let r = await run(["check"], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('site "from-config"');
    Deno.writeTextFileSync(join(dir, "bws.toml"), siteToml(0).replace('"web"', '"from-bws"'));
    r = await run(["check"], dir);
    expect(r.stdout).toContain('site "from-bws"');
  });
});

describe("running", () => {
  it("serves a directory with `bws DIR -p 0` and exits 0 on SIGTERM", async () => {
    const dir = join(tmp, "static-site");
    Deno.mkdirSync(dir);
    Deno.writeTextFileSync(join(dir, "index.html"), "<h1>hello from bws</h1>");
    const bws = new Running([dir, "-p", "0", "-b", "127.0.0.1"]);
    try {
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("hello from bws");
    } finally {
      expect(await bws.stop("SIGTERM")).toBe(0);
    }
  });

  it("exits 1 naming the address when the port is in use", async () => {
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (blocker.addr as Deno.NetAddr).port;
      const path = write("busy/bws.toml", siteToml(port));
      Deno.mkdirSync(join(tmp, "busy/www"), { recursive: true });
      const r = await run(["-c", path]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`Cannot listen on 127.0.0.1:${port}: address in use`);
    } finally {
      blocker.close();
    }
  });

  it("exits 1 without starting when the config is invalid", async () => {
    const path = write("invalid.toml", `[[sites]]\nname = "x"\nport = 0\n`);
    const r = await run(["-c", path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("serves nothing");
  });

  it("reloads on SIGHUP, keeps running on a broken edit, and exits 0 on SIGINT", async () => {
    Deno.mkdirSync(join(tmp, "reload/www"), { recursive: true });
    Deno.writeTextFileSync(join(tmp, "reload/www/index.html"), "v1");
    const path = write("reload/bws.toml", siteToml(0));
    const bws = new Running(["-c", path]);
    try {
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      Deno.writeTextFileSync(path, siteToml(0, '[sites.headers]\n"X-Version" = "2"\n'));
      bws.child.kill("SIGHUP");
      await bws.waitFor(/SIGHUP: config reloaded \(generation 2\)/);
      Deno.writeTextFileSync(path, siteToml(0, "bogus = 1\n"));
      bws.child.kill("SIGHUP");
      await bws.waitFor(/reload failed, still running the previous config/);
      expect(bws.stderr).toContain("sites[0].bogus: unknown key");
      const res = await fetch(`http://127.0.0.1:${port}/`);
      await res.body?.cancel();
      expect(res.status).toBe(200);
    } finally {
      expect(await bws.stop("SIGINT")).toBe(0);
    }
  });

  it("reads error pages again on reload; a missing one fails the reload with key and line", async () => {
    Deno.mkdirSync(join(tmp, "pages/www"), { recursive: true });
    const page = join(tmp, "pages/404.html");
    Deno.writeTextFileSync(page, "<h1>gone</h1>");
    const path = write("pages/bws.toml", siteToml(0, '[sites.error_pages]\n404 = "404.html"\n'));
    const bws = new Running(["-c", path]);
    try {
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      Deno.removeSync(page);
      bws.child.kill("SIGHUP");
      await bws.waitFor(/reload failed, still running the previous config/);
      expect(bws.stderr).toContain(
        `${path}:8:1: sites[0].error_pages.404: Cannot read error page "${page}": no such file`,
      );
      const res = await fetch(`http://127.0.0.1:${port}/`);
      await res.body?.cancel();
      expect(res.status).toBe(404); // still serving: www/ has no index.html
      const check = await run(["check", "-c", path]);
      expect(check.code).toBe(1);
      expect(check.stderr).toContain(
        `${path}:8:1: sites[0].error_pages.404: Cannot read error page`,
      );
      Deno.writeTextFileSync(page, "<h1>back</h1>");
      bws.child.kill("SIGHUP");
      await bws.waitFor(/SIGHUP: config reloaded \(generation 2\)/);
    } finally {
      expect(await bws.stop("SIGINT")).toBe(0);
    }
  });

  it("reloads by itself with --watch when the file changes", async () => {
    Deno.mkdirSync(join(tmp, "watch/www"), { recursive: true });
    const path = write("watch/bws.toml", siteToml(0));
    const bws = new Running(["-c", path, "--watch"]);
    try {
      await bws.waitFor(/listening on/);
      // Once it says so, signals and the watch are in place: a SIGHUP and an edit at once, as a
      // deploy script would (under load, the edit was missed when the watch started after the
      // announcement, and a SIGHUP then would have ended the process).
      bws.child.kill("SIGHUP");
      await bws.waitFor(/SIGHUP: config reloaded \(generation 2\)/);
      // an editor-style atomic replace: write a temp file, rename it over the config
      Deno.writeTextFileSync(path + ".tmp", siteToml(0, 'index_file = "home.html"\n'));
      Deno.renameSync(path + ".tmp", path);
      await bws.waitFor(/change: config reloaded \(generation 3\)/);
      Deno.writeTextFileSync(path, siteToml(0, 'index_file = "again.html"\n'));
      await bws.waitFor(/change: config reloaded \(generation 4\)/);
    } finally {
      expect(await bws.stop("SIGTERM")).toBe(0);
    }
  });

  it("`deno task start -c FILE` serves that config, not the demo", async () => {
    Deno.mkdirSync(join(tmp, "task/www"), { recursive: true });
    Deno.writeTextFileSync(join(tmp, "task/www/index.html"), "<h1>my own site</h1>");
    const path = write("task/bws.toml", siteToml(0));
    const bws = new Running(["-c", path], ROOT, ["task", "start"]);
    try {
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 15_000);
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("my own site");
      expect(bws.stderr).toContain("(web)");
    } finally {
      expect(await bws.stop("SIGTERM")).toBe(0);
    }
  });
});

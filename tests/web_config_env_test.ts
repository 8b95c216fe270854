/**
 * `${NAME}`, `${NAME:-default}` and `$$` in the config, end to end (SPEC 11): `bws check` fails
 * naming the key and the variable when one is missing (and passes once it is set), and a bws
 * subprocess started with the variables in its environment listens on the port, proxies to the
 * upstream and sends the header values they gave.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { fileURLToPath } from "node:url";
import { startEchoBackend } from "./helpers/backends.ts";
import { freePort } from "./helpers/pebble.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const dir = Deno.makeTempDirSync({ prefix: "bws_web_config_env_" });
const backend = startEchoBackend("env-upstream");
after(async () => {
  await backend.close();
  Deno.removeSync(dir, { recursive: true });
});

/** Names no test process sets. */
const PORT_VAR = "BWS_E2E_ENV_PORT";
const UPSTREAM_VAR = "BWS_E2E_ENV_UPSTREAM";
const TOKEN_VAR = "BWS_E2E_ENV_TOKEN";
const UNSET_VAR = "BWS_E2E_ENV_NEVER_SET";

const CONFIG = `[logging]
level = "warn"
access_log = false

[[sites]]
name = "env"
hostname = "localhost"
port = "\${${PORT_VAR}}"
bind = "127.0.0.1"

[sites.headers]
"X-Token" = "\${${TOKEN_VAR}}"
"X-Greeting" = "\${${UNSET_VAR}:-hello from the default}"
"X-Price" = "$$5 and $$\${${UNSET_VAR}:-x}"
"X-Bcrypt" = "$2y$10$abc"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "\${${UPSTREAM_VAR}}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
const configPath = `${dir}/bws.toml`;
Deno.writeTextFileSync(configPath, CONFIG);

async function check(env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "check", "-c", configPath],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

describe("environment variables in the config", () => {
  it("bws check fails naming the key and each missing variable", async () => {
    const r = await check({ [PORT_VAR]: "8080" });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("sites[0].headers.X-Token");
    expect(r.output).toContain(`environment variable ${TOKEN_VAR} is not set`);
    expect(r.output).toContain("sites[0].proxy.upstreams[0].url");
    expect(r.output).toContain(`environment variable ${UPSTREAM_VAR} is not set`);
    // A variable with a default is not an error.
    expect(r.output).not.toContain(UNSET_VAR);
  });

  it("bws check passes once they are set, and never prints a value", async () => {
    const r = await check({
      [PORT_VAR]: "8080",
      [TOKEN_VAR]: "s3cret-token",
      [UPSTREAM_VAR]: backend.url,
    });
    expect(r.code).toBe(0);
    expect(r.output).toContain("127.0.0.1:8080");
    expect(r.output).not.toContain("s3cret-token");
  });

  it("a running bws uses the values, the defaults and literal $ signs", async () => {
    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", CLI, "-c", configPath],
      env: {
        [PORT_VAR]: String(port),
        [TOKEN_VAR]: "s3cret-token",
        [UPSTREAM_VAR]: backend.url,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let res: Response | null = null;
      const end = Date.now() + 15_000;
      while (res === null && Date.now() < end) {
        res = await fetch(`http://127.0.0.1:${port}/hello`).catch(() => null);
        if (res === null) await new Promise((r) => setTimeout(r, 50));
      }
      expect(res?.status).toBe(200);
      expect(res!.headers.get("x-backend")).toBe("env-upstream");
      expect(res!.headers.get("x-token")).toBe("s3cret-token");
      expect(res!.headers.get("x-greeting")).toBe("hello from the default");
      expect(res!.headers.get("x-price")).toBe("$5 and $x");
      expect(res!.headers.get("x-bcrypt")).toBe("$2y$10$abc");
      expect((await res!.json()).path).toBe("/hello");
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  });
});

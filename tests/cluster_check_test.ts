/**
 * `bws check` with `[cluster]`, as a user runs it: a bad redis_url is an error with its line; an
 * unreachable Redis is a warning (exit 0), with the password never printed.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./helpers/pebble.ts";
import { hasRedis, REDIS_SERVER, startRedis, type TestRedis } from "./helpers/redis.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));

if (!hasRedis) console.warn(`Skipping the reachable-Redis check: ${REDIS_SERVER} is not installed`);

async function check(file: string, permissions = ["-A"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, CLI, "check", "-c", file],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

describe("bws check with [cluster]", () => {
  let tmp = "";
  let redis: TestRedis | null = null;
  const write = async (name: string, redisUrl: string) => {
    const file = join(tmp, name);
    await Deno.writeTextFile(
      file,
      `[cluster]\nredis_url = "${redisUrl}"\nkey_prefix = "edge:"\n\n` +
        `[[sites]]\nname = "a"\nport = 8080\nstatic_dir = "${tmp}"\n`,
    );
    return file;
  };

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "bws_cluster_check_" });
    if (hasRedis) redis = await startRedis();
  });

  after(async () => {
    await redis?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("warns about an unreachable Redis, exits 0 and never prints the password", async () => {
    const port = freePort(); // nothing listens there
    const r = await check(await write("down.toml", `redis://:hunter2@127.0.0.1:${port}/0`));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `down.toml:2:1: cluster.redis_url: warning: Cannot reach Redis at ` +
        `"redis://:***@127.0.0.1:${port}/0"`,
    );
    expect(r.stdout).toContain(`cluster: redis://:***@127.0.0.1:${port}/0, key prefix "edge:"`);
    expect(r.stdout + r.stderr).not.toContain("hunter2");
  });

  it("says it could not check without network permission", async () => {
    const r = await check(await write("noperm.toml", "redis://127.0.0.1:1/0"), [
      "--allow-read",
      "--allow-env",
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: Cannot check that Redis is reachable");
  });

  it("rejects a redis_url that is not one, with its line", async () => {
    const r = await check(await write("bad.toml", "http://127.0.0.1:6379/x"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'bad.toml:2:1: cluster.redis_url: Cannot use redis_url "http://127.0.0.1:6379/x": ' +
        'the scheme must be "redis://"',
    );
  });

  it("prints no warning when Redis answers", { skip: !hasRedis }, async () => {
    const r = await check(await write("up.toml", redis!.url));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("OK");
  });
});

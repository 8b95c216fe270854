/**
 * `server.workers` as a user runs it: `cli.ts` in a real subprocess with two worker threads.
 * SIGTERM drains both, a second bws cannot silently share a port through SO_REUSEPORT, and
 * `bws check` validates the key.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rawRequest } from "./helpers/backends.ts";
import { parseProm } from "./helpers/prom_parse.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const tmp = Deno.makeTempDirSync({ prefix: "bws_workers_test_" });
after(() => Deno.removeSync(tmp, { recursive: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running `cli.ts` whose stderr can be awaited. */
class Bws {
  readonly child: Deno.ChildProcess;
  stderr = "";
  exited = false;
  readonly #done: Promise<void>;

  constructor(args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...args],
      cwd: ROOT,
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

  async waitFor(re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = this.stderr.match(re);
      if (m) return m;
      if (this.exited) break;
      await sleep(25);
    }
    if (this.exited) await this.#done;
    throw new Error(
      `${this.exited ? "bws exited" : "timed out"} waiting for ${re}:\n${this.stderr}`,
    );
  }

  async exit(): Promise<number> {
    const { code } = await this.child.status;
    await this.#done;
    return code;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function config(name: string, port: number, backend: string, extra = ""): string {
  const path = join(tmp, name);
  Deno.writeTextFileSync(
    path,
    `[server]
workers = 2
grace_period = 5

[management]
enabled = true
port = 0

[logging]
level = "warn"
access_log = false

[[sites]]
name = "s"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
${extra}`,
  );
  return path;
}

function get(port: number, path: string): Promise<string> {
  return rawRequest(
    port,
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    15_000,
  );
}

describe("server.workers in a bws process", () => {
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (new URL(req.url).pathname === "/slow") await sleep(1500);
    return new Response("ok\n");
  });
  const backendUrl = `http://127.0.0.1:${backend.addr.port}`;
  after(() => backend.shutdown());

  it("SIGTERM drains both workers: requests in flight on each finish, then bws exits 0", async () => {
    const bws = new Bws(["-c", config("drain.toml", 0, backendUrl)]);
    try {
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const [, api] = await bws.waitFor(/management API on (http:\/\/\S+)/);
      const slow = Array.from({ length: 8 }, () => get(Number(port), "/slow"));
      // Wait until both workers have requests in flight.
      const until = Date.now() + 5000;
      let busy = [0, 0];
      while (Date.now() < until) {
        const m = parseProm(await (await fetch(`${api}/metrics`)).text());
        busy = [1, 2].map((w) => m.value("bws_worker_in_flight", { worker: String(w) }) ?? 0);
        if (busy[0] > 0 && busy[1] > 0) break;
        await sleep(25);
      }
      expect(busy[0]).toBeGreaterThan(0);
      expect(busy[1]).toBeGreaterThan(0);
      const signalled = Date.now();
      bws.kill("SIGTERM");
      await bws.waitFor(/SIGTERM: shutting down/);
      await sleep(200);
      // Neither worker accepts any more.
      await expect(Deno.connect({ hostname: "127.0.0.1", port: Number(port) })).rejects.toThrow();
      const answers = await Promise.all(slow);
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 200 /);
      expect(await bws.exit()).toBe(0);
      // Done when the requests were, not at the end of the 5 s grace period.
      expect(Date.now() - signalled).toBeLessThan(4000);
    } finally {
      bws.kill("SIGKILL");
      await bws.exit();
    }
  });

  for (const format of ["text", "json"] as const) {
    it(`writes one ${format} access line per request served by either worker`, async () => {
      const log = join(tmp, `access_${format}.log`);
      const path = config(`access_${format}.toml`, 0, backendUrl);
      Deno.writeTextFileSync(
        path,
        Deno.readTextFileSync(path).replace(
          "access_log = false",
          `access_log = true\nformat = "${format}"\noutput = "file"\nfile_path = "${log}"`,
        ),
      );
      const bws = new Bws(["-c", path]);
      const [, port] = await bws.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const [, api] = await bws.waitFor(/management API on (http:\/\/\S+)/);
      const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      try {
        // New connections each time, so the kernel hands them to both workers.
        for (let i = 0; i < 120; i++) {
          const res = await fetch(`http://127.0.0.1:${port}/item/${i}?q=${i}`, { client });
          expect(await res.text()).toBe("ok\n");
        }
        const m = parseProm(await (await fetch(`${api}/metrics`)).text());
        const perWorker = [1, 2].map((w) =>
          m.value("bws_worker_requests_total", { worker: String(w) }) ?? 0
        );
        expect(Math.min(...perWorker)).toBeGreaterThan(0);
      } finally {
        client.close();
        bws.kill("SIGTERM");
      }
      expect(await bws.exit()).toBe(0);
      const lines = Deno.readTextFileSync(log).split("\n").filter((l) => l !== "");
      const paths = new Set<string>();
      for (const line of lines) {
        if (format === "json") {
          const e = JSON.parse(line);
          expect(e.type).toBe("access");
          expect(e.status).toBe(200);
          expect(e.site).toBe("s");
          paths.add(e.path);
        } else {
          const m = line.match(/^\S+Z 127\.0\.0\.1 site=s "GET (\S+)" 200 3 [\d.]+ms upstream=/);
          expect(m).not.toBeNull();
          paths.add(m![1]);
        }
      }
      expect(lines.length).toBe(120);
      expect(paths.size).toBe(120);
      expect(paths.has("/item/7?q=7")).toBe(true);
    });
  }

  it("a second bws cannot share the port through SO_REUSEPORT: it exits 1", async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const path = config("busy.toml", port, backendUrl);
    const first = new Bws(["-c", path]);
    try {
      await first.waitFor(/listening on/);
      const second = new Bws(["-c", path]);
      expect(await second.exit()).toBe(1);
      expect(second.stderr).toContain(`Cannot listen on 127.0.0.1:${port}: address in use`);
      expect(await get(port, "/")).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      first.kill("SIGTERM");
      expect(await first.exit()).toBe(0);
    }
  });

  it("bws check validates server.workers", async () => {
    const check = async (value: string) => {
      const path = join(tmp, "check.toml");
      Deno.writeTextFileSync(
        path,
        `[server]\nworkers = ${value}\n\n[[sites]]\nname = "s"\nport = 8080\nstatic_dir = "."\n`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "check", "-c", path],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
    };
    const zero = await check("0");
    expect(zero.code).toBe(1);
    expect(zero.err).toContain(
      'check.toml:2:1: server.workers: Cannot use 0: expected an integer from 1 to 1024, or "auto"',
    );
    const word = await check('"many"');
    expect(word.code).toBe(1);
    expect(word.err).toContain('server.workers: Cannot use "many"');
    const auto = await check('"auto"');
    expect(auto.code).toBe(0);
    expect(auto.out).toMatch(/server: .*, workers auto \(\d+ here\)/);
    const four = await check("4");
    expect(four.code).toBe(0);
    expect(four.out).toContain(", workers 4");
  });
});

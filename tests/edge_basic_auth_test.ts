/**
 * `[sites.basic_auth]` (SPEC 10) against a running bws with real clients: hashes written by
 * `htpasswd -B` (in an htpasswd file, re-read on reload) and by bcryptjs (in `users`); 401 with
 * WWW-Authenticate for missing or wrong credentials, before any upstream; Authorization kept
 * from the upstream unless `forward_authorization = true`; a route's table replacing the site's;
 * static files and WebSocket upgrades protected too.
 */

import { after, before, describe, it } from "node:test";
import bcrypt from "bcryptjs";
import { expect } from "expect";
import { parseConfigText } from "../src/config/load.ts";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { parseProm } from "./helpers/prom_parse.ts";

const HTPASSWD = "/usr/bin/htpasswd";
const hasHtpasswd = await Deno.stat(HTPASSWD).then(() => true, () => false);

async function htpasswd(args: string[]): Promise<void> {
  const out = await new Deno.Command(HTPASSWD, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

function config(backend: string, staticDir: string, bobHash: string): string {
  return `
[server]
grace_period = 1

[management]
enabled = true
port = 0

[[sites]]
name = "ba"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${staticDir}"

[sites.basic_auth]
realm = "staff"
htpasswd_file = "users.htpasswd"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"

[[sites.proxy.routes]]
path = "/ws"
upstream = "b"
websocket = true

[[sites.proxy.routes]]
path = "/fwd/"
upstream = "b"

[sites.proxy.routes.basic_auth]
realm = "bob's"
users = { bob = "${bobHash}" }
forward_authorization = true
`;
}

describe("basic auth end to end", { skip: !hasHtpasswd }, () => {
  let backend: Backend;
  let bws: TestBws;
  let dir: string;
  let toml: string;

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(bws.url(path), { headers });
  const seenBy = async (res: Response): Promise<Seen> => (await res.json()) as Seen;
  const authorization = (s: Seen) => s.headers.find(([n]) => n === "authorization")?.[1];

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_basic_" });
    await Deno.writeTextFile(`${dir}/index.html`, "<h1>static</h1>\n");
    await htpasswd(["-cbB", `${dir}/users.htpasswd`, "alice", "wonder land"]);
    backend = startEchoBackend("b", (req) => {
      if (req.headers.get("upgrade") !== "websocket") return undefined;
      const { response, socket } = Deno.upgradeWebSocket(req);
      socket.onerror = () => {};
      return response;
    });
    toml = config(backend.url, dir, bcrypt.hashSync("builder", 8));
    bws = await startBws(toml, dir);
  });
  after(async () => {
    await bws.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  });

  it("asks for credentials with 401 and WWW-Authenticate, before any upstream", async () => {
    const before = backend.seen.length;
    for (
      const headers of [
        {} as Record<string, string>,
        { authorization: basic("alice", "wrong") },
        { authorization: basic("mallory", "wonder land") },
        { authorization: "Bearer abc" },
      ]
    ) {
      const res = await get("/api/x", headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="staff", charset="UTF-8"');
      await res.body?.cancel();
    }
    expect(backend.seen.length).toBe(before);
    const entry = bws.logger.entries.find((e) => e.path === "/api/x")!;
    expect(entry).toMatchObject({ status: 401, refused: "basic_auth" });
  });

  it("lets an htpasswd -B user in and keeps Authorization from the upstream", async () => {
    const res = await get("/api/alice", { authorization: basic("alice", "wonder land") });
    expect(res.status).toBe(200);
    expect(authorization(await seenBy(res))).toBeUndefined();
    // Again on the same client: the verified credential is remembered, still right.
    const again = await get("/api/alice2", { authorization: basic("alice", "wonder land") });
    expect(again.status).toBe(200);
    await again.body?.cancel();
  });

  it("lets a route's table (a bcryptjs hash) replace the site's, forwarding Authorization", async () => {
    const bob = basic("bob", "builder");
    const res = await get("/fwd/x", { authorization: bob });
    expect(res.status).toBe(200);
    expect(authorization(await seenBy(res))).toBe(bob);
    const alice = await get("/fwd/x", { authorization: basic("alice", "wonder land") });
    expect(alice.status).toBe(401);
    expect(alice.headers.get("www-authenticate")).toBe('Basic realm="bob\'s", charset="UTF-8"');
    await alice.body?.cancel();
    const bobElsewhere = await get("/api/x", { authorization: bob });
    expect(bobElsewhere.status).toBe(401);
    await bobElsewhere.body?.cancel();
  });

  it("protects static files and WebSocket upgrades", async () => {
    const anon = await get("/index.html");
    expect(anon.status).toBe(401);
    await anon.body?.cancel();
    const file = await get("/index.html", { authorization: basic("alice", "wonder land") });
    expect(await file.text()).toBe("<h1>static</h1>\n");

    const url = bws.url("/ws").replace("http:", "ws:");
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve("open");
      ws.onerror = () => resolve("error");
    });
    expect(refused).toBe("error");
    expect(bws.logger.entries.find((e) => e.path === "/ws")).toMatchObject({
      status: 401,
      refused: "basic_auth",
    });
    const opened = await new Promise<string>((resolve) => {
      const ws = new WebSocket(url, {
        headers: { authorization: basic("alice", "wonder land") },
      } as unknown as string[]);
      ws.onopen = () => {
        resolve("open");
        ws.close();
      };
      ws.onerror = () => resolve("error");
    });
    expect(opened).toBe("open");
  });

  it("re-reads the htpasswd file on reload: a changed password works at once, the old one not", async () => {
    await htpasswd(["-bB", `${dir}/users.htpasswd`, "alice", "new password"]);
    const result = await bws.handle.reload(parseConfigText(toml, { baseDir: dir }));
    expect(result).toMatchObject({ ok: true });
    const old = await get("/api/old", { authorization: basic("alice", "wonder land") });
    expect(old.status).toBe(401);
    await old.body?.cancel();
    const fresh = await get("/api/new", { authorization: basic("alice", "new password") });
    expect(fresh.status).toBe(200);
    await fresh.body?.cancel();
  });

  it("counts refusals in bws_refused_total{site,rule}", async () => {
    const addr = bws.handle.managementAddress!;
    const prom = parseProm(
      await (await fetch(`http://${addr.hostname}:${addr.port}/metrics`)).text(),
    );
    const refused = bws.logger.entries.filter((e) => e.refused === "basic_auth").length;
    expect(prom.value("bws_refused_total", { site: "ba", rule: "basic_auth" })).toBe(refused);
  });
});

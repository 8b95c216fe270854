import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import bcrypt from "bcryptjs";
import { configFromObject } from "../config/load.ts";
import type { SiteConfig } from "../config/types.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { type BcryptVerifier, InlineBcryptVerifier } from "./bcrypt_verifier.ts";
import { compileSiteEdge } from "./edge_policy.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import { applyUpstreamEdit, type EdgeRefusal, type EdgeVerdict } from "./types.ts";

const HASH = bcrypt.hashSync("secret", 4);
const client = new UpstreamClient();
/** The default proxy timeouts. */
const timeouts = { connectMs: 5000, readMs: 30_000, writeMs: 30_000 };

function site(extra: Record<string, unknown>, routes: Record<string, unknown>[] = []): SiteConfig {
  return configFromObject({
    server: { trusted_proxies: ["127.0.0.1"] },
    sites: [{
      name: "main",
      port: 0,
      static_dir: ".",
      proxy: {
        enabled: true,
        upstreams: [{ name: "b", url: "http://127.0.0.1:9" }],
        routes: routes.map((r) => ({ upstream: "b", ...r })),
      },
      ...extra,
    }],
  }).sites[0];
}

class CountingVerifier implements BcryptVerifier {
  calls = 0;
  verify(password: string, hash: string): Promise<boolean> {
    this.calls++;
    return new InlineBcryptVerifier().verify(password, hash);
  }
}

const basic = (user: string, password: string): [string, string] => [
  "authorization",
  "Basic " + btoa(`${user}:${password}`),
];

const ruleOf = (v: EdgeVerdict) => (v as EdgeRefusal | null)?.rule ?? null;

describe("compileSiteEdge / EdgePolicy", () => {
  after(() => client.close());

  it("a site without tables has no policy", () => {
    const edge = compileSiteEdge(site({}, [{ path: "/api/" }]), { client, timeouts });
    expect(edge).toEqual({ site: null, routes: [null] });
  });

  it("runs access, rate limit, basic auth in order; an earlier refusal spends nothing later", async () => {
    const verifier = new CountingVerifier();
    const edge = compileSiteEdge(
      site({
        access: { deny: ["203.0.113.9"] },
        rate_limit: { rate: 1, burst: 2 },
        basic_auth: { users: { alice: HASH } },
      }),
      { client, timeouts, verifier },
    );
    const policy = edge.site!;
    const good = testRequest({ headers: [basic("alice", "secret")] });
    // Denied: no token taken, no bcrypt.
    for (let i = 0; i < 5; i++) {
      expect(ruleOf(policy.check(good, "203.0.113.9") as EdgeVerdict)).toBe("access");
    }
    expect(verifier.calls).toBe(0);
    // Allowed address: two pass (bcrypt once, then the cache), the third is rate limited.
    expect(await policy.check(good, "203.0.113.1")).toEqual({
      refused: false,
      removeHeaders: ["authorization"],
      addHeaders: [],
    });
    expect((policy.check(good, "203.0.113.1") as EdgeVerdict)?.refused).toBe(false);
    expect(ruleOf(policy.check(good, "203.0.113.1") as EdgeVerdict)).toBe("rate_limit");
    expect(verifier.calls).toBe(1);
    // A wrong password is refused by basic auth (after taking a token).
    const bad = testRequest({ headers: [basic("alice", "nope")] });
    expect(ruleOf(await policy.check(bad, "203.0.113.2"))).toBe("basic_auth");
  });

  it("answers synchronously when no rule needs to wait", () => {
    const edge = compileSiteEdge(
      site({ access: { allow: ["10.0.0.0/8"] }, rate_limit: { rate: 100 } }),
      {
        client,
        timeouts,
      },
    );
    expect(edge.site!.check(testRequest(), "10.1.2.3")).toBeNull();
    expect(ruleOf(edge.site!.check(testRequest(), "192.0.2.1") as EdgeVerdict)).toBe("access");
  });

  it("a route's table replaces the site's; tables it does not write are the site's own", () => {
    const edge = compileSiteEdge(
      site(
        { access: { allow: ["10.0.0.0/8"] }, rate_limit: { rate: 1, burst: 1 } },
        [
          { path: "/open/", access: {} }, // an empty access table: open to everyone
          { path: "/inherits/" },
          { path: "/own-limit/", rate_limit: { rate: 1, burst: 3 } },
        ],
      ),
      { client, timeouts },
    );
    const [open, inherits, ownLimit] = edge.routes.map((p) => p!);
    const req = testRequest();
    expect(ruleOf(edge.site!.check(req, "192.0.2.1") as EdgeVerdict)).toBe("access");
    expect(ruleOf(inherits.check(req, "192.0.2.1") as EdgeVerdict)).toBe("access");
    expect(open.check(req, "192.0.2.1")).toBeNull();
    // The site's limit is one set of buckets for the site and the routes that inherit it.
    expect(edge.site!.check(req, "10.0.0.1")).toBeNull();
    expect(ruleOf(inherits.check(req, "10.0.0.1") as EdgeVerdict)).toBe("rate_limit");
    // /open/ inherits the limit too (only access was replaced).
    expect(ruleOf(open.check(req, "10.0.0.1") as EdgeVerdict)).toBe("rate_limit");
    // A route's own limit has its own buckets.
    for (let i = 0; i < 3; i++) expect(ownLimit.check(req, "10.0.0.1")).toBeNull();
    expect(ruleOf(ownLimit.check(req, "10.0.0.1") as EdgeVerdict)).toBe("rate_limit");
  });

  describe("with forward auth", () => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    before(() => {
      server = Deno.serve(
        { port: 0, hostname: "127.0.0.1", onListen: () => {} },
        (req) =>
          req.headers.get("authorization")?.startsWith("Basic ")
            ? new Response(null, { status: 204, headers: { "remote-user": "alice" } })
            : new Response("who?", { status: 401 }),
      );
    });
    after(() => server.shutdown());

    it("merges the changes of basic auth and forward auth; forward auth still sees Authorization", async () => {
      const verifier = new CountingVerifier();
      const edge = compileSiteEdge(
        site({
          basic_auth: { users: { alice: HASH } },
          forward_auth: {
            url: `http://127.0.0.1:${server.addr.port}/verify`,
            copy_headers: ["Remote-User"],
          },
        }),
        { client, timeouts, verifier },
      );
      const v = await edge.site!.check(testRequest({ headers: [basic("alice", "secret")] }), "::1");
      expect(v).toEqual({
        refused: false,
        removeHeaders: ["authorization", "remote-user"],
        addHeaders: [["Remote-User", "alice"]],
      });
      // Basic auth refuses before the auth service is asked.
      const r = await edge.site!.check(testRequest(), "::1");
      expect(ruleOf(r)).toBe("basic_auth");
    });
  });
});

describe("applyUpstreamEdit", () => {
  it("drops the named fields in any case, then appends", () => {
    const fields: [string, string][] = [
      ["Host", "a"],
      ["Authorization", "Basic x"],
      ["remote-user", "root"],
      ["Accept", "*/*"],
    ];
    expect(applyUpstreamEdit(fields, null)).toBe(fields);
    expect(
      applyUpstreamEdit(fields, {
        refused: false,
        removeHeaders: ["authorization", "remote-user"],
        addHeaders: [["Remote-User", "alice"]],
      }),
    ).toEqual([["Host", "a"], ["Accept", "*/*"], ["Remote-User", "alice"]]);
  });
});

/**
 * Choosing the site by Host (SPEC 3): exact names and `hostnames`, `*.` wildcards (one label),
 * case, port and trailing dot ignored, then the port's `default = true` site, else its first.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { fetchHost, startBws, type TestBws } from "./helpers/bws.ts";
import { freePort } from "./helpers/pebble.ts";

function site(name: string, port: number, upstream: string, names: string): string {
  return `
[[sites]]
name = "${name}"
port = ${port}
bind = "127.0.0.1"
${names}

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "u"
url = "${upstream}"

[[sites.proxy.routes]]
path = "/"
upstream = "u"
`;
}

/** The id of the backend (one per site) that answered for `host`. */
async function siteFor(bws: TestBws, host: string): Promise<string> {
  const res = await fetchHost(bws.url("/who"), host);
  return ((await res.json()) as { id: string }).id;
}

describe("site selection by Host (SPEC 3)", () => {
  const backends: Backend[] = [];
  let withDefault: TestBws;
  let withoutDefault: TestBws;

  before(async () => {
    const [main, wild, fallback] = ["main", "wild", "fallback"].map((id) => {
      const b = startEchoBackend(id);
      backends.push(b);
      return b;
    });
    const p1 = freePort();
    withDefault = await startBws(
      site("main", p1, main.url, `hostname = "example.test"\nhostnames = ["www.example.test"]`) +
        site("wild", p1, wild.url, `hostname = "*.wild.test"`) +
        site("fallback", p1, fallback.url, `hostname = "other.test"\ndefault = true`),
    );
    const p2 = freePort();
    withoutDefault = await startBws(
      site("first", p2, main.url, `hostname = "first.test"`) +
        site("second", p2, wild.url, `hostname = "second.test"`),
    );
  });
  after(async () => {
    await withDefault.close();
    await withoutDefault.close();
    for (const b of backends) await b.close();
  });

  it("matches hostname and hostnames exactly, ignoring case, port and a trailing dot", async () => {
    expect(await siteFor(withDefault, "example.test")).toBe("main");
    expect(await siteFor(withDefault, "www.example.test")).toBe("main");
    expect(await siteFor(withDefault, "WWW.Example.TEST:8080")).toBe("main");
    expect(await siteFor(withDefault, "example.test.")).toBe("main");
  });

  it("matches a *. wildcard for exactly one label", async () => {
    expect(await siteFor(withDefault, "a.wild.test")).toBe("wild");
    expect(await siteFor(withDefault, "b.wild.test:443")).toBe("wild");
    // Two labels or the bare domain are not covered by "*.wild.test".
    expect(await siteFor(withDefault, "a.b.wild.test")).toBe("fallback");
    expect(await siteFor(withDefault, "wild.test")).toBe("fallback");
  });

  it("sends unmatched hosts to the default site, else to the port's first site", async () => {
    expect(await siteFor(withDefault, "unknown.test")).toBe("fallback");
    expect(await siteFor(withDefault, "127.0.0.1")).toBe("fallback");
    expect(await siteFor(withoutDefault, "second.test")).toBe("wild");
    expect(await siteFor(withoutDefault, "unknown.test")).toBe("main");
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { findPosition, scanKeyPositions } from "./positions.ts";

const doc = `# comment
[server]
name = "x" # trailing
trusted_proxies = [
  "10.0.0.0/8",  # a comment inside
  "::1",
]

[[sites]]
name = "a"
description = """
[not.a.table]
key = 1
"""
[sites.headers]
"X-Frame-Options" = "DENY"
'Odd Name' = "v"

[[sites]]
name = "b"
proxy.enabled = true

[[sites.proxy.routes]]
path = "/api/"
  upstream   = "x"

[[sites.proxy.routes]]
path = "/b/"
inline = { a = 1, "b c" = [ { d = 2 } ] }
`;

describe("scanKeyPositions", () => {
  const map = scanKeyPositions(doc);
  const at = (p: string) => {
    const pos = map.get(p);
    return pos ? [pos.line, pos.column] : undefined;
  };
  it("maps plain keys and table headers", () => {
    expect(at("server")).toEqual([2, 1]);
    expect(at("server.name")).toEqual([3, 1]);
    expect(at("server.trusted_proxies")).toEqual([4, 1]);
    expect(at("server.trusted_proxies[1]")).toEqual([6, 3]);
  });
  it("counts array-of-tables indexes and skips multi-line strings", () => {
    expect(at("sites[0]")).toEqual([9, 1]);
    expect(at("sites[0].name")).toEqual([10, 1]);
    expect(map.has("not")).toBe(false);
    expect(map.has("sites[0].key")).toBe(false);
    expect(at("sites[0].headers.X-Frame-Options")).toEqual([16, 1]);
    expect(at('sites[0].headers."Odd Name"')).toEqual([17, 1]);
    expect(at("sites[1].name")).toEqual([20, 1]);
    expect(at("sites[1].proxy.enabled")).toEqual([21, 1]);
  });
  it("handles nested arrays of tables, indentation and inline tables", () => {
    expect(at("sites[1].proxy.routes[0]")).toEqual([23, 1]);
    expect(at("sites[1].proxy.routes[0].upstream")).toEqual([25, 3]);
    expect(at("sites[1].proxy.routes[1].path")).toEqual([28, 1]);
    expect(at("sites[1].proxy.routes[1].inline.a")).toEqual([29, 12]);
    expect(at('sites[1].proxy.routes[1].inline."b c"[0].d')).toEqual([29, 31]);
  });
  it("falls back to the nearest enclosing key", () => {
    expect(findPosition(map, "sites[1].proxy.routes[0].strip_prefix")).toEqual({
      line: 23,
      column: 1,
    });
    expect(findPosition(map, "management.port")).toBeUndefined();
  });
});

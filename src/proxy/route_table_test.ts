import { describe, it } from "node:test";
import { expect } from "expect";
import { hasDotSegment, RouteTable, stripPrefix } from "./route_table.ts";

describe("hasDotSegment", () => {
  it("finds dot segments in every form an upstream may decode or split on", () => {
    for (
      const p of [
        "/api/../secret",
        "/api/..",
        "/api/.",
        "/./x",
        "/api/%2e%2e/secret",
        "/api/%2E%2e",
        "/api/.%2E/x",
        "/api/..%2fsecret",
        "/api/..%2Fsecret",
        "/api/..%5csecret",
        "/api\\..\\secret",
        "/api/..;jsessionid=1/secret",
        "/api/%2e;x",
      ]
    ) expect([p, hasDotSegment(p)]).toEqual([p, true]);
  });

  it("leaves ordinary paths alone, dots inside names included", () => {
    for (
      const p of [
        "/",
        "/api/x",
        "/.well-known/acme-challenge/abc",
        "/app.js",
        "/a..b/c",
        "/.../x",
        "/a/.hidden",
        "/%252e%252e/x",
        "/group%2Fproject",
        "/a%20b",
        "/x%2",
        "/a;..",
      ]
    ) expect([p, hasDotSegment(p)]).toEqual([p, false]);
  });
});

describe("stripPrefix", () => {
  it("always leaves a path that starts with /", () => {
    const table = new RouteTable([{ path: "/api/", value: 1 }, { path: "/ws", value: 2 }]);
    for (const p of ["/api", "/api/", "/api/x", "/api//x", "/ws", "/ws/", "/ws/a?b"]) {
      const route = table.match(p)!;
      expect(stripPrefix(p, route.base).startsWith("/")).toBe(true);
    }
    expect(table.match("/apix")).toBe(null);
    expect(table.match("/wsx")).toBe(null);
  });
});

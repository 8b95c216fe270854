import { describe, it } from "node:test";
import { expect } from "expect";
import type { RedirectConfig } from "../config/types.ts";
import { RedirectTable } from "./redirect_table.ts";

const r = (path: string, to: string, over: Partial<RedirectConfig> = {}): RedirectConfig => ({
  path,
  to,
  status: 308,
  keepPath: true,
  ...over,
});
const location = (table: RedirectTable, path: string, query = "") =>
  table.match(path, query)?.headers[0][1] ?? null;

describe("RedirectTable", () => {
  it("answers with the status, a Location and an empty body", () => {
    const t = new RedirectTable([r("/old", "/new", { status: 301, keepPath: false })]);
    expect(t.match("/old", "?x=1")).toEqual({
      status: 301,
      headers: [["location", "/new"]],
      body: new Uint8Array(0),
    });
    expect(t.size).toBe(1);
  });

  it("matches like a route: segment boundaries, trailing slash, longest path wins", () => {
    const t = new RedirectTable([
      r("/blog/", "https://blog.example.com/"),
      r("/blog/archive", "https://archive.example.com"),
      r("/ws", "/websocket"),
    ]);
    expect(location(t, "/blog")).toBe("https://blog.example.com/");
    expect(location(t, "/blog/")).toBe("https://blog.example.com/");
    expect(location(t, "/blog/2024/post")).toBe("https://blog.example.com/2024/post");
    expect(location(t, "/blog/archive/x")).toBe("https://archive.example.com/x");
    expect(location(t, "/blogger")).toBe(null);
    expect(location(t, "/wsx")).toBe(null);
    expect(location(t, "/ws/a")).toBe("/websocket/a");
    expect(new RedirectTable([]).match("/", "")).toBe(null);
  });

  it("keep_path appends the rest and the query; nothing for the bare path itself", () => {
    const t = new RedirectTable([r("/", "https://example.com/"), r("/docs", "/manual?v=2#top")]);
    expect(location(t, "/", "")).toBe("https://example.com/");
    expect(location(t, "/a/b%20c", "?q=1&r")).toBe("https://example.com/a/b%20c?q=1&r");
    expect(location(t, "/docs", "")).toBe("/manual?v=2#top");
    expect(location(t, "/docs/intro", "?lang=de")).toBe("/manual/intro?v=2&lang=de#top");
    expect(location(t, "/", "?")).toBe("https://example.com/");
  });

  it("without keep_path sends `to` as written", () => {
    const t = new RedirectTable([r("/old/", "/new?a=1", { keepPath: false, status: 302 })]);
    expect(t.match("/old/deep/path", "?x=1")).toMatchObject({
      status: 302,
      headers: [["location", "/new?a=1"]],
    });
  });

  it("never makes a Location that a browser reads as another host", () => {
    const t = new RedirectTable([r("/old", "/"), r("/go", "/new/")]);
    expect(location(t, "/old//evil.example/x")).toBe("/evil.example/x");
    expect(location(t, "/old/\\evil.example")).toBe("/evil.example");
    expect(location(t, "/go//evil.example")).toBe("/new/evil.example");
  });
});

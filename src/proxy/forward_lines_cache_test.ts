import { describe, it } from "node:test";
import { expect } from "expect";
import { ForwardLinesCache } from "./header_plan.ts";

describe("ForwardLinesCache", () => {
  it("keeps one entry per client address, the last 1024 addresses at most", () => {
    const cache = new ForwardLinesCache();
    for (let i = 0; i < 5000; i++) {
      cache.set(`10.0.${i >> 8}.${i & 255}`, "a.test", "http", `l${i}`);
    }
    expect(cache.get("10.0.0.0", "a.test", "http")).toBe(null);
    expect(cache.get(`10.0.${3975 >> 8}.${3975 & 255}`, "a.test", "http")).toBe(null);
    expect(cache.get(`10.0.${3976 >> 8}.${3976 & 255}`, "a.test", "http")).toBe("l3976");
    expect(cache.get(`10.0.${4999 >> 8}.${4999 & 255}`, "a.test", "http")).toBe("l4999");
  });

  it("answers only for the Host and scheme the lines were made for", () => {
    const cache = new ForwardLinesCache();
    cache.set("192.0.2.1", "a.test", "http", "lines");
    expect(cache.get("192.0.2.1", "a.test", "http")).toBe("lines");
    expect(cache.get("192.0.2.1", "b.test", "http")).toBe(null);
    expect(cache.get("192.0.2.1", "a.test", "https")).toBe(null);
    cache.set("192.0.2.1", "b.test", "http", "other");
    expect(cache.get("192.0.2.1", "a.test", "http")).toBe(null);
    expect(cache.get("192.0.2.1", "b.test", "http")).toBe("other");
  });
});

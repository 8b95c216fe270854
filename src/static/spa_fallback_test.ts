import { describe, it } from "node:test";
import { expect } from "expect";
import { looksLikeFile, spaFallbackApplies, spaFallbackPath } from "./spa_fallback.ts";

describe("SPA fallback", () => {
  it("tells file-like paths from app routes by the last segment's extension", () => {
    for (const p of ["/app/missing.js", "/a.min.css", "/x/y/z.json", "/f%2Ejs", "/v1.2/x.y"]) {
      expect({ p, file: looksLikeFile(p) }).toEqual({ p, file: true });
    }
    for (const p of ["/app/settings", "/", "/app/", "/v1.2/users", "/.env", "/trailing.", ""]) {
      expect({ p, file: looksLikeFile(p) }).toEqual({ p, file: false });
    }
  });

  it("applies to GET and HEAD of non-file paths only", () => {
    expect(spaFallbackApplies("GET", "/app/settings")).toBe(true);
    expect(spaFallbackApplies("HEAD", "/app/settings")).toBe(true);
    expect(spaFallbackApplies("GET", "/app/missing.js")).toBe(false);
    expect(spaFallbackApplies("POST", "/app/settings")).toBe(false);
  });

  it("names the fallback file as a request path", () => {
    expect(spaFallbackPath("index.html")).toBe("/index.html");
    expect(spaFallbackPath("/app/index.html")).toBe("/app/index.html");
  });
});

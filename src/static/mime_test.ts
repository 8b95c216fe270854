import { describe, it } from "node:test";
import { expect } from "expect";
import { contentTypeFor } from "./mime.ts";

describe("contentTypeFor", () => {
  it("gives text types a utf-8 charset", () => {
    expect(contentTypeFor("/x/index.html")).toBe("text/html; charset=utf-8");
    expect(contentTypeFor("a.css")).toBe("text/css; charset=utf-8");
    expect(contentTypeFor("a.mjs")).toBe("text/javascript; charset=utf-8");
    expect(contentTypeFor("a.json")).toBe("application/json; charset=utf-8");
    expect(contentTypeFor("a.svg")).toBe("image/svg+xml; charset=utf-8");
    expect(contentTypeFor("notes.md")).toBe("text/markdown; charset=utf-8");
  });

  it("gives binary types no charset, case-insensitively", () => {
    expect(contentTypeFor("a.PNG")).toBe("image/png");
    expect(contentTypeFor("a.woff2")).toBe("font/woff2");
    expect(contentTypeFor("a.wasm")).toBe("application/wasm");
    expect(contentTypeFor("a.tar.gz")).toBe("application/gzip");
  });

  it("falls back to octet-stream for unknown or missing extensions", () => {
    expect(contentTypeFor("a.unknownext")).toBe("application/octet-stream");
    expect(contentTypeFor("Makefile")).toBe("application/octet-stream");
    expect(contentTypeFor("dir.d/README")).toBe("application/octet-stream");
    expect(contentTypeFor(".html")).toBe("application/octet-stream");
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import type { HttpResponse } from "../http1/types.ts";
import { acceptsHtml, ERROR_PAGE_CONTENT_TYPE, ErrorPages } from "./error_pages.ts";

const enc = new TextEncoder();
const page = (text: string) => ({ file: `/srv/${text}.html`, body: enc.encode(text) });
const pages = new ErrorPages({
  "404": page("not-found"),
  "5xx": page("server"),
  "503": page("busy"),
});
const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

describe("acceptsHtml", () => {
  it("takes browsers' Accept and explicit text/html or text/*", () => {
    expect(acceptsHtml(BROWSER)).toBe(true);
    expect(acceptsHtml("TEXT/HTML")).toBe(true);
    expect(acceptsHtml("application/json, text/*;q=0.1")).toBe(true);
  });

  it("refuses */* alone, no header, q=0 and other types", () => {
    for (const a of [null, "*/*", "application/json", "text/html;q=0", "text/html;q=0, text/*"]) {
      expect({ a, html: acceptsHtml(a) }).toEqual({ a, html: false });
    }
    expect(acceptsHtml("text/html;q=x")).toBe(false);
    expect(acceptsHtml("text/plain")).toBe(false);
  });
});

describe("ErrorPages", () => {
  it("prefers the status's own page over its class's, only for clients that take HTML", () => {
    expect(text(pages.pageFor(404, BROWSER))).toBe("not-found");
    expect(text(pages.pageFor(503, BROWSER))).toBe("busy");
    expect(text(pages.pageFor(502, BROWSER))).toBe("server");
    expect(pages.pageFor(403, BROWSER)).toBe(null);
    expect(pages.pageFor(502, "*/*")).toBe(null);
    expect(new ErrorPages({}).pageFor(404, BROWSER)).toBe(null);
    expect(pages.size).toBe(3);
  });

  it("puts the page into bws's own response, keeping the status and other headers", () => {
    const done = () => {};
    const res: HttpResponse = {
      status: 502,
      headers: [["Content-Type", "text/plain"], ["x-request-id", "r1"], [
        "cache-control",
        "no-store",
      ]],
      body: enc.encode("502 Bad Gateway\n"),
      done,
    };
    const out = pages.apply(res, BROWSER);
    expect(out).toEqual({
      status: 502,
      headers: [["x-request-id", "r1"], ["cache-control", "no-store"], [
        "content-type",
        ERROR_PAGE_CONTENT_TYPE,
      ]],
      body: enc.encode("server"),
      length: null,
      done,
    });
    expect(pages.apply(res, "application/json")).toBe(res);
    expect(pages.apply({ ...res, status: 429 }, BROWSER).status).toBe(429);
  });
});

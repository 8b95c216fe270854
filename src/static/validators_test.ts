import { describe, it } from "node:test";
import { expect } from "expect";
import { Fields } from "../http1/types.ts";
import { ifRangeAllows, isNotModified, validatorsFor } from "./validators.ts";

const mtime = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
const v = validatorsFor(255, mtime);
const h = (init: Record<string, string>) => new Headers(init);

describe("validators", () => {
  it("builds a weak ETag from size and mtime, and an HTTP-date", () => {
    expect(v.etag).toBe(`W/"ff-${mtime.getTime().toString(16)}"`);
    expect(v.lastModified).toBe("Tue, 02 Jan 2024 03:04:05 GMT");
  });

  it("If-None-Match: lists, star and weak comparison", () => {
    const strong = v.etag.slice(2);
    expect(isNotModified(h({ "if-none-match": v.etag }), v)).toBe(true);
    expect(isNotModified(h({ "if-none-match": `"x", ${strong}` }), v)).toBe(true);
    expect(isNotModified(h({ "if-none-match": "*" }), v)).toBe(true);
    expect(isNotModified(h({ "if-none-match": `W/"other"` }), v)).toBe(false);
  });

  it("If-Modified-Since applies only without If-None-Match", () => {
    expect(isNotModified(h({ "if-modified-since": v.lastModified! }), v)).toBe(true);
    expect(isNotModified(h({ "if-modified-since": "Mon, 01 Jan 2024 00:00:00 GMT" }), v)).toBe(
      false,
    );
    expect(isNotModified(h({ "if-modified-since": "garbage" }), v)).toBe(false);
    expect(
      isNotModified(h({ "if-none-match": `"nope"`, "if-modified-since": v.lastModified! }), v),
    ).toBe(false);
  });

  it("If-Range matches our ETag or our Last-Modified only", () => {
    expect(ifRangeAllows(h({}), v)).toBe(true);
    expect(ifRangeAllows(h({ "if-range": v.etag }), v)).toBe(true);
    expect(ifRangeAllows(h({ "if-range": `W/"old"` }), v)).toBe(false);
    expect(ifRangeAllows(h({ "if-range": v.lastModified! }), v)).toBe(true);
    expect(ifRangeAllows(h({ "if-range": "Mon, 01 Jan 2024 00:00:00 GMT" }), v)).toBe(false);
  });

  it("reads bws's own Fields, a repeated If-None-Match field as one list", () => {
    const fields = new Fields([["if-none-match", `"a"`], ["if-none-match", v.etag]]);
    expect(isNotModified(fields, v)).toBe(true);
    expect(isNotModified(new Fields([["if-none-match", `"a"`]]), v)).toBe(false);
    expect(ifRangeAllows(new Fields([["if-range", v.etag]]), v)).toBe(true);
  });
});

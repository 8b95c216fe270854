import { describe, it } from "node:test";
import { expect } from "expect";
import { decodeRequestPath } from "./request_path.ts";

const ok = (segments: string[], trailingSlash = false) => ({ kind: "ok", segments, trailingSlash });

describe("decodeRequestPath", () => {
  it("decodes segments and keeps the trailing slash", () => {
    expect(decodeRequestPath("/")).toEqual(ok([], true));
    expect(decodeRequestPath("/a%20b/c.txt")).toEqual(ok(["a b", "c.txt"]));
    expect(decodeRequestPath("/sub/")).toEqual(ok(["sub"], true));
    expect(decodeRequestPath("//a///b")).toEqual(ok(["a", "b"]));
  });

  it("normalises dot segments that stay inside the root", () => {
    expect(decodeRequestPath("/a/./b/../c")).toEqual(ok(["a", "c"]));
    expect(decodeRequestPath("/a/%2e%2e/c")).toEqual(ok(["c"]));
    expect(decodeRequestPath("/a/.%2E/c")).toEqual(ok(["c"]));
  });

  it("refuses paths that climb above the root", () => {
    for (const p of ["/..", "/../etc/passwd", "/%2e%2e/", "/a/../../b", "/.%2e/x"]) {
      expect(decodeRequestPath(p)).toEqual({ kind: "not_found" });
    }
  });

  it("never treats encoded slash or backslash as a separator", () => {
    for (const p of ["/a/%2f..%2f", "/..%2f..%2fetc/passwd", "/a%2Fb", "/a%5cb", "/a%5C..%5Cb"]) {
      expect(decodeRequestPath(p)).toEqual({ kind: "not_found" });
    }
  });

  it("refuses dotfiles and dot-directories", () => {
    expect(decodeRequestPath("/.env")).toEqual({ kind: "not_found" });
    expect(decodeRequestPath("/.git/config")).toEqual({ kind: "not_found" });
    expect(decodeRequestPath("/a/%2Ehtaccess")).toEqual({ kind: "not_found" });
  });

  it("rejects invalid encodings and NUL bytes as bad requests", () => {
    for (const p of ["/%zz", "/a%", "/%c3%28", "/a%00b", "/%00"]) {
      expect(decodeRequestPath(p)).toEqual({ kind: "bad_request" });
    }
  });
});

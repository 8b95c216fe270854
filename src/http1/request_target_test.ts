import { describe, it } from "node:test";
import { expect } from "expect";
import { HttpError } from "./errors.ts";
import { isValidHostPort, splitOtherTarget } from "./request_target.ts";

describe("isValidHostPort", () => {
  it("checks a slice and can require a port", () => {
    expect(isValidHostPort("xx[::1]:1xx", 2, 9, true)).toBe(true);
    expect(isValidHostPort("a.test", 0, 6, true)).toBe(false);
    expect(isValidHostPort("a.test:", 0, 7, true)).toBe(false);
    expect(isValidHostPort("a.test:443", 0, 10, true)).toBe(true);
    expect(isValidHostPort("\u0100.test", 0, 6, false)).toBe(false);
    expect(isValidHostPort("[::1.2.3.4]", 0, 11, false)).toBe(true);
    expect(isValidHostPort("[1:2:3:4:5:6:1.2.3.4]", 0, 21, false)).toBe(true);
    expect(isValidHostPort("[1:2:3:4:5:6:7:1.2.3.4]", 0, 23, false)).toBe(false);
    expect(isValidHostPort("[1::]", 0, 5, false)).toBe(true);
    expect(isValidHostPort("[1:]", 0, 4, false)).toBe(false);
    expect(isValidHostPort("[::01.2.3.4]", 0, 12, false)).toBe(false);
  });
});

describe("splitOtherTarget", () => {
  it("splits absolute-form into authority, path and query", () => {
    expect(splitOtherTarget("GET", "http://a.test")).toEqual({
      path: "/",
      query: "",
      host: "a.test",
    });
    expect(splitOtherTarget("GET", "https://a.test:1/x/y?q?r")).toEqual({
      path: "/x/y",
      query: "?q?r",
      host: "a.test:1",
    });
  });

  it("takes * for OPTIONS and host:port for CONNECT, and nothing else", () => {
    expect(splitOtherTarget("OPTIONS", "*")).toEqual({ path: "*", query: "", host: null });
    expect(splitOtherTarget("CONNECT", "a.test:443")).toEqual({ path: "", query: "", host: null });
    for (
      const [method, target] of [
        ["GET", "*"],
        ["CONNECT", "*"],
        ["CONNECT", "/x"],
        ["CONNECT", "http://a.test/"],
        ["GET", "a.test:443"],
        ["GET", "ws://a.test/"],
        ["GET", "http:a.test"],
        ["GET", "http://a.test@b.test/"],
      ]
    ) {
      expect(() => splitOtherTarget(method, target)).toThrow(HttpError);
    }
  });
});

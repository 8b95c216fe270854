import { describe, it } from "node:test";
import { expect } from "expect";
import { clientCloseCode, sendableUpstream, upstreamClose } from "./close_codes.ts";

describe("close codes", () => {
  it("passes sendable upstream codes to the client and maps the local-only ones", () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1013, 3000, 4999]) {
      expect(clientCloseCode(code)).toBe(code);
    }
    expect(clientCloseCode(1005)).toBe(1000);
    expect(clientCloseCode(1006)).toBe(1011);
    expect(clientCloseCode(1015)).toBe(1011);
    expect(clientCloseCode(0)).toBe(1011);
  });

  it("sends only 1000 and 3000-4999 upstream, naming a mapped code", () => {
    expect(sendableUpstream(1000)).toBe(true);
    expect(sendableUpstream(4001)).toBe(true);
    expect(sendableUpstream(1001)).toBe(false);
    expect(upstreamClose(4001, "bye")).toEqual([4001, "bye"]);
    expect(upstreamClose(1001, "")).toEqual([1000, "client closed: 1001"]);
    expect(upstreamClose(1008, "policy")).toEqual([1000, "policy"]);
    expect(upstreamClose(1005, "")).toEqual([1000, ""]);
    expect(upstreamClose(1006, "")).toEqual([1000, "client went away"]);
    expect(upstreamClose(0, "")).toEqual([1000, "client went away"]);
  });
});

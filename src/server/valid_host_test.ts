import { describe, it } from "node:test";
import { expect } from "expect";
import { isValidHost } from "./valid_host.ts";

describe("isValidHost", () => {
  it("accepts names, ports, IP literals and percent-encoding", () => {
    for (const h of ["localhost", "a.example.com:8080", "[::1]:80", "[fe80::1%25eth0]", "x_y"]) {
      expect([h, isValidHost(h)]).toEqual([h, true]);
    }
  });

  it("refuses what would move the path or has no place in a host", () => {
    for (const h of ["", "evil/raw", "a b", "user@host", "h?x", "h#x", 'h"', "h\\x", "\xe9.com"]) {
      expect([h, isValidHost(h)]).toEqual([h, false]);
    }
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { knownName } from "./known_names.ts";

describe("knownName", () => {
  it("recognises common names in any ASCII case inside a longer string", () => {
    const s = "xxContent-LENGTH: 5";
    expect(knownName(s, 2, 16)).toBe("content-length");
    expect(knownName("Host", 0, 4)).toBe("host");
    expect(knownName("X-Forwarded-For", 0, 15)).toBe("x-forwarded-for");
    expect(knownName("set-cookie", 0, 10)).toBe("set-cookie");
  });

  it("returns null for other names, also of a known name's length", () => {
    expect(knownName("Hosts", 0, 5)).toBeNull();
    expect(knownName("Hast", 0, 4)).toBeNull();
    expect(knownName("content-lengtx", 0, 14)).toBeNull();
    expect(knownName("X-Custom-Thing", 0, 14)).toBeNull();
    expect(knownName("a", 0, 1)).toBeNull();
  });

  it("does not confuse token characters that differ only in bit 0x20", () => {
    // "^" | 0x20 is "~" and "_" | 0x20 is DEL: neither may match a letter or "-".
    expect(knownName("x_request-id", 0, 12)).toBeNull();
    expect(knownName("x^request-id", 0, 12)).toBeNull();
    expect(knownName("x-request-id", 0, 12)).toBe("x-request-id");
  });
});

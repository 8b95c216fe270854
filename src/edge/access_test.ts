import { describe, it } from "node:test";
import { expect } from "expect";
import { AccessList } from "./access.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { EdgeRefusal } from "./types.ts";

describe("AccessList", () => {
  it("a non-empty allow list admits only its members (exact addresses and CIDRs, v4 and v6)", () => {
    const a = new AccessList({
      allow: ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"],
      deny: [],
    });
    expect(a.admits("203.0.113.200")).toBe(true);
    expect(a.admits("198.51.100.7")).toBe(true);
    expect(a.admits("198.51.100.8")).toBe(false);
    expect(a.admits("2001:db8:1::5")).toBe(true);
    expect(a.admits("2001:db9::1")).toBe(false);
    expect(a.admits("::ffff:203.0.113.5")).toBe(true); // IPv4-mapped form of a listed v4
  });

  it("deny wins over allow; an empty allow list admits everyone not denied", () => {
    const a = new AccessList({ allow: ["203.0.113.0/24"], deny: ["203.0.113.9"] });
    expect(a.admits("203.0.113.8")).toBe(true);
    expect(a.admits("203.0.113.9")).toBe(false);
    const d = new AccessList({ allow: [], deny: ["::1", "10.0.0.0/8"] });
    expect(d.admits("127.0.0.1")).toBe(true);
    expect(d.admits("::1")).toBe(false);
    expect(d.admits("10.200.0.1")).toBe(false);
  });

  it("refuses with 403 and names the rule; an address that does not parse is not allowed in", () => {
    const a = new AccessList({ allow: ["127.0.0.1"], deny: [] });
    expect(a.check(testRequest(), "127.0.0.1")).toBeNull();
    const v = a.check(testRequest(), "not-an-ip") as EdgeRefusal;
    expect(v.rule).toBe("access");
    expect(v.response.status).toBe(403);
    expect(new TextDecoder().decode(v.response.body as Uint8Array)).toBe("403 Forbidden\n");
    expect(new AccessList({ allow: [], deny: ["10.0.0.0/8"] }).admits("garbage")).toBe(true);
  });
});

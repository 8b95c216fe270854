import { describe, it } from "node:test";
import { expect } from "expect";
import type { AccessEntry } from "./types.ts";
import { formatAccessJson, formatAccessText } from "./format.ts";

const entry: AccessEntry = {
  time: Date.UTC(2026, 0, 2, 3, 4, 5),
  site: "main",
  client: "203.0.113.7",
  method: "GET",
  path: "/admin/",
  status: 429,
  bytesOut: 22,
  durationMs: 0.2,
  upstream: "",
  requestId: "r1",
  route: "/admin/",
};

describe("access lines name the edge rule that refused a request", () => {
  it("text: refused=RULE, only when set", () => {
    expect(formatAccessText({ ...entry, refused: "rate_limit" })).toMatch(
      / route=\/admin\/ refused=rate_limit\n$/,
    );
    expect(formatAccessText(entry)).not.toContain("refused");
  });

  it("json: a refused field, only when set", () => {
    const line = JSON.parse(formatAccessJson({ ...entry, refused: "basic_auth" }));
    expect(line.refused).toBe("basic_auth");
    expect(JSON.parse(formatAccessJson(entry)).refused).toBeUndefined();
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { errorText } from "./error_text.ts";

describe("errorText", () => {
  it("gives an Error's message, or its class name when the message is empty", () => {
    expect(errorText(new Error("boom"))).toBe("boom");
    expect(errorText(new TypeError(""))).toBe("TypeError");
  });

  it("gives anything else as a string", () => {
    expect(errorText("plain")).toBe("plain");
    expect(errorText(42)).toBe("42");
    expect(errorText(null)).toBe("null");
  });

  it("appends a cause's message only when asked and not already said", () => {
    const err = new Error("fetch failed", { cause: new Error("connection refused") });
    expect(errorText(err)).toBe("fetch failed");
    expect(errorText(err, { cause: true })).toBe("fetch failed: connection refused");
    const said = new Error("Cannot connect: connection refused", { cause: err.cause });
    expect(errorText(said, { cause: true })).toBe("Cannot connect: connection refused");
    expect(errorText(new Error("x", { cause: "text" }), { cause: true })).toBe("x");
  });
});

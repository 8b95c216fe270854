import { describe, it } from "node:test";
import { expect } from "expect";
import type { CompressionAlgorithm } from "../config/types.ts";
import { negotiate, Negotiator } from "./negotiate.ts";

const ALL: readonly CompressionAlgorithm[] = ["zstd", "br", "gzip"];
const n = (header: string, algorithms = ALL) => [...negotiate(header, algorithms)];

describe("negotiate", () => {
  it("breaks ties by the server's order", () => {
    expect(n("gzip, deflate, br, zstd")).toEqual(["zstd", "br", "gzip"]);
    expect(n("gzip, deflate, br")).toEqual(["br", "gzip"]);
    expect(n("gzip, br, zstd", ["gzip", "br"])).toEqual(["gzip", "br"]);
    expect(n("deflate")).toEqual([]);
  });

  it("ranks by q-value first", () => {
    expect(n("zstd;q=0.5, br;q=0.8, gzip")).toEqual(["gzip", "br", "zstd"]);
    expect(n("gzip;q=1.0, br;q=0.999")).toEqual(["gzip", "br"]);
    expect(n("br;Q=0.1 , GZIP ; q = 0.2")).toEqual(["gzip", "br"]);
  });

  it("treats q=0 as a refusal", () => {
    expect(n("gzip;q=0, br")).toEqual(["br"]);
    expect(n("gzip;q=0.000, br;q=0")).toEqual([]);
  });

  it("gives * to every coding not named", () => {
    expect(n("*")).toEqual(["zstd", "br", "gzip"]);
    expect(n("gzip;q=0.5, *;q=0.1")).toEqual(["gzip", "zstd", "br"]);
    expect(n("br, *;q=0")).toEqual(["br"]);
    expect(n("*;q=0")).toEqual([]);
  });

  it("lets an explicit identity weight beat lower-ranked codings", () => {
    expect(n("gzip;q=0.4, br;q=0.6, identity;q=0.5")).toEqual(["br"]);
    expect(n("gzip;q=0.5, identity;q=0.5")).toEqual(["gzip"]);
    expect(n("identity")).toEqual([]);
    expect(n("gzip, identity;q=0")).toEqual(["gzip"]);
  });

  it("reads x-gzip as gzip, ignores unknown codings, parameters and malformed weights", () => {
    expect(n("x-gzip")).toEqual(["gzip"]);
    expect(n("compress, br;level=5")).toEqual(["br"]);
    expect(n("gzip;q=2, br;q=0.5000, zstd;q=abc, deflate")).toEqual([]);
    expect(n("gzip;q=0.5;foo=bar")).toEqual(["gzip"]);
    expect(n(" , ,gzip,")).toEqual(["gzip"]);
    // listed twice: the higher weight counts
    expect(n("gzip;q=0, gzip;q=0.3, br;q=0.2")).toEqual(["gzip", "br"]);
  });
});

describe("Negotiator", () => {
  it("means identity without a header, with an empty one, or without algorithms", () => {
    const neg = new Negotiator(ALL);
    expect(neg.negotiate(null)).toEqual([]);
    expect(neg.negotiate("")).toEqual([]);
    expect(neg.best(null)).toBe(null);
    expect(new Negotiator([]).negotiate("gzip")).toEqual([]);
  });

  it("answers repeated headers from its bounded memory with the same result", () => {
    const neg = new Negotiator(ALL);
    const first = neg.negotiate("gzip, deflate, br, zstd");
    expect(neg.negotiate("gzip, deflate, br, zstd")).toBe(first);
    expect(neg.best("gzip, br")).toBe("br");
    // many distinct headers do not grow it without bound, and answers stay right
    for (let i = 0; i < 1000; i++) {
      expect(neg.best(`gzip;q=0.${String(i % 1000).padStart(3, "0")}, br;q=0.0005`)).toBe(
        i === 0 ? null : "gzip",
      );
    }
    expect(neg.negotiate("gzip, deflate, br, zstd")).toEqual(["zstd", "br", "gzip"]);
    expect(Object.isFrozen(first)).toBe(true);
  });
});

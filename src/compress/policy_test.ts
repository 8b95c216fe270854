import { describe, it } from "node:test";
import { expect } from "expect";
import type { CompressionConfig } from "../config/types.ts";
import {
  codedEtag,
  compressedHeaders,
  CompressionPolicy,
  type HeaderList,
  notModifiedHeaders,
  type ResponseFacts,
  upstreamIfNoneMatch,
  withVary,
} from "./policy.ts";

const CONFIG: CompressionConfig = {
  static: true,
  proxy: true,
  algorithms: ["zstd", "br", "gzip"],
  minSize: 1024,
  types: ["text/*", "application/json", "image/svg+xml"],
};
const policy = new CompressionPolicy(CONFIG);

const facts = (over: Partial<ResponseFacts> = {}): ResponseFacts => ({
  method: "GET",
  status: 200,
  headers: [["Content-Type", "text/html; charset=utf-8"]],
  length: 5000,
  ...over,
});

describe("CompressionPolicy", () => {
  it("matches types exactly or by text/*, ignoring parameters and case", () => {
    for (const t of ["text/html", "TEXT/CSS; charset=utf-8", "application/json", "image/svg+xml"]) {
      expect({ t, ok: policy.compressibleType(t) }).toEqual({ t, ok: true });
    }
    for (const t of ["application/javascript", "image/png", "text", "", "application/json+x"]) {
      expect({ t, ok: policy.compressibleType(t) }).toEqual({ t, ok: false });
    }
    expect(policy.compressibleType(null)).toBe(false);
    const any = new CompressionPolicy({ ...CONFIG, types: ["*/*"] });
    expect(any.compressibleType("image/png")).toBe(true);
  });

  it("never compresses an event stream, even under text/* or */*", () => {
    expect(policy.compressibleType("text/event-stream")).toBe(false);
    expect(
      new CompressionPolicy({ ...CONFIG, types: ["*/*"] }).compressibleType("text/event-stream"),
    )
      .toBe(false);
  });

  it("allows an ordinary text response and refuses each documented exclusion", () => {
    expect(policy.eligible(facts())).toBe(true);
    expect(policy.eligible(facts({ length: null }))).toBe(true);
    expect(policy.eligible(facts({ status: 404 }))).toBe(true);
    const refused: Partial<ResponseFacts>[] = [
      { method: "HEAD" },
      { status: 204 },
      { status: 206 },
      { status: 304 },
      { status: 101 },
      { length: 1023 },
      { length: 0 },
      { headers: [["content-type", "text/html"], ["Content-Encoding", "br"]] },
      { headers: [["content-type", "text/html"], ["content-range", "bytes 0-9/100"]] },
      { headers: [["content-type", "text/html"], ["Cache-Control", "public, No-Transform"]] },
      { headers: [["content-type", "text/event-stream"]] },
      { headers: [["content-type", "image/png"]] },
      { headers: [] },
    ];
    for (const over of refused) {
      expect({ over, eligible: policy.eligible(facts(over)) }).toEqual({ over, eligible: false });
    }
    // "no-transform" only as a directive, not inside another one
    expect(policy.eligible(facts({
      headers: [["content-type", "text/html"], ["cache-control", "x-no-transformer=1"]],
    }))).toBe(true);
  });
});

describe("header edits", () => {
  it("suffixes strong and weak ETags inside the quotes; drops one it cannot suffix", () => {
    expect(codedEtag('"abc"', "gzip")).toBe('"abc-gzip"');
    expect(codedEtag('W/"1f-18c"', "br")).toBe('W/"1f-18c-br"');
    expect(codedEtag('""', "zstd")).toBe('"-zstd"');
    expect(codedEtag("abc", "gzip")).toBe(null);
  });

  it("sets Content-Encoding, merges Vary, codes the ETag, drops length and ranges", () => {
    const h: HeaderList = [
      ["Content-Type", "text/html"],
      ["ETag", '"v1"'],
      ["Content-Length", "5000"],
      ["Accept-Ranges", "bytes"],
      ["Vary", "Origin"],
      ["X-Other", "kept"],
    ];
    expect(compressedHeaders(h, "br")).toEqual([
      ["Content-Type", "text/html"],
      ["ETag", '"v1-br"'],
      ["Vary", "Origin, Accept-Encoding"],
      ["X-Other", "kept"],
      ["content-encoding", "br"],
    ]);
    expect(compressedHeaders([["etag", "unquoted"]], "gzip")).toEqual([
      ["content-encoding", "gzip"],
      ["vary", "Accept-Encoding"],
    ]);
  });

  it("adds Vary once, and leaves Vary: * or an existing Accept-Encoding alone", () => {
    expect(withVary([])).toEqual([["vary", "Accept-Encoding"]]);
    const has: HeaderList = [["vary", "origin, accept-encoding"]];
    expect(withVary(has)).toBe(has);
    const star: HeaderList = [["Vary", "*"]];
    expect(withVary(star)).toBe(star);
    expect(withVary([["Vary", "Origin"], ["Vary", "Cookie"]])).toEqual([
      ["Vary", "Origin, Accept-Encoding"],
      ["Vary", "Cookie"],
    ]);
  });

  it("turns the client's coded tags back for the upstream and codes its 304", () => {
    expect(upstreamIfNoneMatch('"a-gzip", W/"b-gzip", "c-br", "d"', "gzip")).toEqual({
      value: '"a", W/"b", "c-br", "d"',
      changed: true,
    });
    expect(upstreamIfNoneMatch('"a-br"', "gzip")).toEqual({ value: '"a-br"', changed: false });
    expect(notModifiedHeaders([["ETag", '"a"'], ["Date", "x"]], "gzip")).toEqual([
      ["ETag", '"a-gzip"'],
      ["Date", "x"],
      ["vary", "Accept-Encoding"],
    ]);
  });
});

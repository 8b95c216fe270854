/**
 * ProxyCompression: the upstream request edit (If-None-Match turned back into the upstream's
 * tags, an edge rule's edit kept) and the response step (the 304's tag suffixed back, other
 * responses compressed or left alone).
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { gunzipSync } from "node:zlib";
import { configFromObject } from "../config/load.ts";
import type { EdgeUpstreamEdit } from "../edge/types.ts";
import { testRequest } from "../../tests/helpers/test_request.ts";
import type { HttpResponse } from "../http1/types.ts";
import { ProxyCompression } from "./proxy_compression.ts";

const compression = (c: Record<string, unknown> = {}) =>
  configFromObject({
    sites: [{
      name: "s",
      port: 0,
      compression: { proxy: true, ...c },
      proxy: {
        enabled: true,
        upstreams: [{ name: "b", url: "http://127.0.0.1:1" }],
        routes: [{ path: "/", upstream: "b" }],
      },
    }],
  }).sites[0].compression;

const TEXT = new TextEncoder().encode("compress me please ".repeat(200));

function upstream(status: number, headers: [string, string][], body: Uint8Array | null) {
  return { status, headers, body } as HttpResponse;
}

describe("ProxyCompression", () => {
  it("is enabled only with proxy = true and some algorithm", () => {
    expect(ProxyCompression.enabled(compression())).toBe(true);
    expect(ProxyCompression.enabled(compression({ proxy: false }))).toBe(false);
    expect(ProxyCompression.enabled(compression({ algorithms: [] }))).toBe(false);
  });

  it("sends the upstream its own tag for the coding it would use, keeping an edge edit", () => {
    const pc = new ProxyCompression(compression());
    const edge: EdgeUpstreamEdit = {
      refused: false,
      removeHeaders: ["authorization"],
      addHeaders: [["Remote-User", "alice"]],
    };
    const req = testRequest({
      headers: [["accept-encoding", "gzip"], ["if-none-match", 'W/"a-gzip", "b-br", "c"']],
    });
    const coding = pc.begin(req, edge);
    expect(coding.edit).toEqual({
      refused: false,
      removeHeaders: ["authorization", "if-none-match"],
      addHeaders: [["Remote-User", "alice"], ["if-none-match", 'W/"a", "b-br", "c"']],
    });
    // No tag of this coding, or nothing accepted: the edit is the edge rule's as it was.
    const other = testRequest({ headers: [["accept-encoding", "br"], ["if-none-match", '"x"']] });
    expect(pc.begin(other, edge).edit).toBe(edge);
    const none = testRequest({ headers: [["if-none-match", '"a-gzip"']] });
    expect(pc.begin(none, null).edit).toBe(null);
  });

  it("puts the suffix back on the upstream's 304 only when it took the tag away", async () => {
    const pc = new ProxyCompression(compression());
    const tagged = pc.begin(
      testRequest({ headers: [["accept-encoding", "gzip"], ["if-none-match", '"a-gzip"']] }),
      null,
    );
    const res = await tagged.apply(upstream(304, [["etag", '"a"']], null));
    expect(res.headers).toEqual([["etag", '"a-gzip"'], ["vary", "Accept-Encoding"]]);
    const plain = pc.begin(testRequest({ headers: [["accept-encoding", "gzip"]] }), null);
    const same = upstream(304, [["etag", '"a"']], null);
    expect(await plain.apply(same)).toBe(same);
  });

  it("compresses an eligible body and leaves a coded one alone", async () => {
    const pc = new ProxyCompression(compression());
    const coding = pc.begin(testRequest({ headers: [["accept-encoding", "gzip"]] }), null);
    const res = await coding.apply(
      upstream(200, [["content-type", "text/plain"], ["etag", '"e"']], TEXT),
    );
    expect(res.headers).toContainEqual(["content-encoding", "gzip"]);
    expect(res.headers).toContainEqual(["etag", '"e-gzip"']);
    expect(new Uint8Array(gunzipSync(res.body as Uint8Array))).toEqual(TEXT);
    const coded = upstream(200, [["content-type", "text/plain"], ["content-encoding", "br"]], TEXT);
    expect(await coding.apply(coded)).toBe(coded);
  });
});

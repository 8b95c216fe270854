import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { createHash } from "node:crypto";
import { type Backend, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { sha256 } from "./helpers/bytes.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";

const MB = 1024 * 1024;

/** A deterministic pseudo-random stream of `total` bytes, in 64 KiB chunks. */
function patternStream(
  total: number,
  hash?: ReturnType<typeof createHash>,
): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(chunk.length, total - sent);
      const part = chunk.slice(0, n);
      part[0] = sent & 0xff;
      hash?.update(part);
      sent += n;
      c.enqueue(part);
    },
  });
}

const gzipped = new Uint8Array(
  await new Response(
    new Blob(["hello hello hello compressed world ".repeat(200)]).stream().pipeThrough(
      new CompressionStream("gzip"),
    ),
  ).arrayBuffer(),
);

describe("proxy bodies (SPEC 4)", () => {
  let backend: Backend;
  let bws: TestBws;

  before(async () => {
    backend = startEchoBackend("b", (req) => {
      const u = new URL(req.url);
      switch (u.pathname) {
        case "/gzip":
          return new Response(gzipped, {
            headers: { "content-encoding": "gzip", "content-type": "text/plain", "x-backend": "b" },
          });
        case "/redirect":
          return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
        case "/download": {
          const size = Number(u.searchParams.get("size"));
          const chunked = u.searchParams.has("chunked");
          return new Response(patternStream(size), {
            headers: chunked ? {} : { "content-length": String(size) },
          });
        }
        case "/sse":
          return new Response(
            new ReadableStream({
              async start(c) {
                for (let i = 0; i < 3; i++) {
                  c.enqueue(new TextEncoder().encode(`data: event ${i}\n\n`));
                  await new Promise((r) => setTimeout(r, 150));
                }
                c.close();
              },
            }),
            { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } },
          );
        case "/nocontent":
          return new Response(null, { status: 204 });
        case "/notmodified":
          return new Response(null, { status: 304, headers: { etag: '"x"' } });
      }
    });
    bws = await startBws(proxySite([backend.url], "", undefined, `max_body_size = "200MB"`));
  });

  after(async () => {
    await bws.close();
    await backend.close();
  });

  it("passes gzip bodies through byte-for-byte with their Content-Encoding", async () => {
    const raw = await rawRequest(
      bws.port,
      "GET /gzip HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    const head = raw.slice(0, raw.indexOf("\r\n\r\n")).toLowerCase();
    expect(head).toContain("content-encoding: gzip");
    const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
    const bytes = Uint8Array.from(body, (c) => c.charCodeAt(0));
    expect(sha256(bytes)).toBe(sha256(gzipped));
  });

  it("passes redirects to the client instead of following them", async () => {
    const res = await fetch(bws.url("/redirect"), { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/elsewhere");
    await res.body?.cancel();
  });

  it("sends no body for HEAD, 204 and 304", async () => {
    const head = await rawRequest(
      bws.port,
      "HEAD /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    expect(head.endsWith("\r\n\r\n")).toBe(true);
    const r204 = await fetch(bws.url("/nocontent"));
    expect(r204.status).toBe(204);
    expect(await r204.text()).toBe("");
    const r304 = await fetch(bws.url("/notmodified"));
    expect(r304.status).toBe(304);
    expect(r304.headers.get("etag")).toBe('"x"');
  });

  it("flushes Server-Sent Events as they arrive", async () => {
    const res = await fetch(bws.url("/sse"));
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    // Events are 150 ms apart: a buffering proxy would deliver them together.
    expect(first).toContain("event 0");
    expect(first).not.toContain("event 1");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toContain("event 2");
  });

  it("streams a 100 MB upload (Content-Length) intact", async () => {
    const hash = createHash("sha256");
    const res = await fetch(bws.url("/upload"), {
      method: "POST",
      body: patternStream(100 * MB, hash),
      headers: { "content-length": String(100 * MB) },
    });
    const seen = await res.json() as Seen;
    expect(seen.bodyLength).toBe(100 * MB);
    expect(seen.bodySha256).toBe(hash.digest("hex"));
  });

  it("streams a chunked upload intact", async () => {
    const hash = createHash("sha256");
    const res = await fetch(bws.url("/upload"), {
      method: "PUT",
      body: patternStream(5 * MB + 17, hash),
    });
    const seen = await res.json() as Seen;
    expect(seen.bodyLength).toBe(5 * MB + 17);
    expect(seen.bodySha256).toBe(hash.digest("hex"));
  });

  for (const chunked of [false, true]) {
    it(`streams a 100 MB download (${chunked ? "chunked" : "Content-Length"}) intact`, async () => {
      const expected = createHash("sha256");
      await patternStream(100 * MB, expected).pipeTo(new WritableStream());
      const res = await fetch(bws.url(`/download?size=${100 * MB}${chunked ? "&chunked" : ""}`));
      if (!chunked) expect(res.headers.get("content-length")).toBe(String(100 * MB));
      const got = createHash("sha256");
      let n = 0;
      for await (const c of res.body!) {
        got.update(c);
        n += c.byteLength;
      }
      expect(n).toBe(100 * MB);
      expect(got.digest("hex")).toBe(expected.digest("hex"));
    });
  }
});

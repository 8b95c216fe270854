/** 100 MB through the client both ways (chunked), verified by SHA-256 on both ends. */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { createHash } from "node:crypto";
import { UpstreamClient } from "../src/upstream/client.ts";
import { parseUpstreamUrl } from "../src/upstream/target.ts";

const MiB = 1024 * 1024;
const TOTAL_MIB = 100;

/** Deterministic 100 MiB stream (each 1 MiB chunk stamped with its index), hashed as produced. */
function source(hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  const base = new Uint8Array(MiB);
  for (let i = 0; i < MiB; i += 65536) crypto.getRandomValues(base.subarray(i, i + 65536));
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i === TOTAL_MIB) return c.close();
      const chunk = base.slice();
      new DataView(chunk.buffer).setUint32(0, i++);
      hash.update(chunk);
      c.enqueue(chunk);
    },
  });
}

describe("UpstreamClient with 100 MB bodies", () => {
  let uploadHash = "";
  let uploadBytes = 0;
  const downloadHash = createHash("sha256");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (req.method === "POST") {
      const h = createHash("sha256");
      let n = 0;
      for await (const c of req.body!) {
        h.update(c);
        n += c.length;
      }
      uploadHash = h.digest("hex");
      uploadBytes = n;
      return new Response(uploadHash);
    }
    return new Response(source(downloadHash)); // streamed: chunked on the wire
  });
  const target = parseUpstreamUrl(`http://127.0.0.1:${server.addr.port}`);
  const client = new UpstreamClient();
  after(async () => {
    client.close();
    await server.shutdown();
  });
  const timeouts = { connectMs: 2000, readMs: 10000, writeMs: 10000 };

  for (const bodyLength of [null, TOTAL_MIB * MiB]) {
    const framing = bodyLength === null ? "chunked" : "with Content-Length";
    it(`uploads 100 MiB ${framing} and the upstream sees the same SHA-256`, async () => {
      const sent = createHash("sha256");
      const res = await client.request(target, {
        method: "POST",
        target: "/up",
        headers: [["Host", "big.test"]],
        body: source(sent),
        bodyLength,
        timeouts,
      });
      const text = new TextDecoder().decode(await new Response(res.body).arrayBuffer());
      expect(uploadBytes).toBe(TOTAL_MIB * MiB);
      expect(text).toBe(sent.digest("hex"));
      expect(uploadHash).toBe(text);
    });
  }

  it("downloads 100 MiB chunked with the same SHA-256 as sent", async () => {
    const res = await client.request(target, {
      method: "GET",
      target: "/down",
      headers: [["Host", "big.test"]],
      body: null,
      bodyLength: null,
      timeouts,
    });
    expect(res.headers).toContainEqual(["transfer-encoding", "chunked"]);
    const got = createHash("sha256");
    let n = 0;
    for await (const c of res.body!) {
      got.update(c);
      n += c.length;
    }
    expect(n).toBe(TOTAL_MIB * MiB);
    expect(got.digest("hex")).toBe(downloadHash.digest("hex"));
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient } from "../src/upstream/client.ts";
import { UpstreamError } from "../src/upstream/errors.ts";
import { parseUpstreamUrl } from "../src/upstream/target.ts";

/** A body of `n` small chunks, one every `gapMs`. */
function trickle(n: number, gapMs: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i++ >= n) return c.close();
      await new Promise((r) => setTimeout(r, gapMs));
      c.enqueue(new TextEncoder().encode("x".repeat(100)));
    },
  });
}

describe("UpstreamClient read timeout and uploads", () => {
  it("starts the read timeout when the request is sent, not while a slow upload streams", async () => {
    let answer = true;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = await req.text();
      if (!answer) await new Promise((r) => setTimeout(r, 1000));
      return new Response(`got ${body.length}`);
    });
    const client = new UpstreamClient();
    const target = parseUpstreamUrl(`http://127.0.0.1:${server.addr.port}`);
    const send = () =>
      client.request(target, {
        method: "POST",
        target: "/up",
        headers: [["host", "t"]],
        body: trickle(8, 100), // ~0.8 s of upload, longer than the read timeout
        bodyLength: null,
        timeouts: { connectMs: 2000, readMs: 300, writeMs: 2000 },
      });
    try {
      const res = await send();
      expect(res.status).toBe(200);
      expect(await new Response(res.body).text()).toBe("got 800");
      // After the body is sent, a silent upstream still times out on read.
      answer = false;
      const err = await send().then(() => null, (e) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).kind).toBe("read_timeout");
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});

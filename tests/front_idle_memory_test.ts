/**
 * What an idle kept-alive connection holds (docs/behaviour.md, "Memory per connection": a 4 KiB
 * head buffer, a 64 KiB body buffer only while a body arrives fast). A client that sends one
 * request with a large head (up to `max_header_size`) or one fast upload, or gets one chunked
 * response in big chunks, then keeps its connection idle, must not leave bws holding the bigger
 * buffer for the connection's life: 20 000 such connections would hold 1.3 GB instead of 80 MB.
 * Real sockets, bws's own front end.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { ClientConnection } from "../src/http1/connection.ts";
import type { HttpRequest } from "../src/http1/types.ts";
import { readBody } from "./helpers/test_response.ts";

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Reads until `count` responses have arrived, the last one ending in `end`. */
async function readResponses(conn: Deno.Conn, count: number, end = "ok"): Promise<string> {
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  while (text.split("HTTP/1.1 200").length - 1 < count || !text.endsWith(end)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`Cannot read ${count} responses: closed after ${text}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

describe("an idle kept-alive connection after a large head or a fast upload", () => {
  let listener: Deno.Listener;
  const served: ClientConnection[] = [];
  const bodies: number[] = [];

  before(() => {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of listener) {
        const conn = new ClientConnection(c, { hostname: "127.0.0.1", port: 1 }, false, {
          options: {
            handler: async (req: HttpRequest) => {
              bodies.push(req.body === null ? 0 : (await readBody(req.body)).length);
              if (req.path !== "/chunked") {
                return { status: 200, headers: [], body: enc.encode("ok") };
              }
              // A streamed body of unknown length: chunked, 64 KiB a chunk, then "ok".
              const chunks = [new Uint8Array(64 * 1024).fill(120), enc.encode("ok")];
              return {
                status: 200,
                headers: [],
                body: {
                  read: () => Promise.resolve(chunks.shift() ?? null),
                  cancel() {},
                },
              };
            },
            timeouts: { headerMs: 10_000, keepAliveMs: 10_000, bodyMs: 10_000, sendMs: 10_000 },
            limits: { maxHeaderSize: 32 * 1024, maxHeaders: 100 },
          },
        });
        served.push(conn);
        void conn.run();
      }
    })().catch(() => {});
  });

  after(() => {
    listener.close();
    for (const c of served) c.close();
  });

  const port = () => (listener.addr as Deno.NetAddr).port;

  it("goes back to the 4 KiB head buffer once idle, and serves the next requests", async () => {
    const big = await Deno.connect({ hostname: "127.0.0.1", port: port() });
    const upload = await Deno.connect({ hostname: "127.0.0.1", port: port() });
    try {
      await writeAll(
        big,
        enc.encode(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(30_000)}\r\n\r\n`),
      );
      await readResponses(big, 1);
      const body = "b".repeat(1_000_000);
      await writeAll(
        upload,
        enc.encode(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      );
      await readResponses(upload, 1);
      await sleep(100);
      expect(served.length).toBe(2);
      expect(served.map((c) => c.buf.length)).toEqual([4096, 4096]);

      // Both connections still work: a pipelined pair on one, another upload on the other.
      await writeAll(
        big,
        enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
      );
      await readResponses(big, 2);
      await writeAll(
        upload,
        enc.encode(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      );
      await readResponses(upload, 1);
      expect(bodies).toEqual([0, 1_000_000, 0, 0, 1_000_000]);
      await sleep(100);
      expect(served.map((c) => c.buf.length)).toEqual([4096, 4096]);
      // Read and write buffers together: the head buffer and at most a small answer buffer.
      for (const c of served) expect(c.bufferBytes).toBeLessThanOrEqual(4096 + 16 * 1024);
    } finally {
      big.close();
      upload.close();
    }
  });

  it("gives back the write buffer of a chunked response once idle", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: port() });
    try {
      await writeAll(conn, enc.encode("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"));
      const text = await readResponses(conn, 1, "ok\r\n0\r\n\r\n");
      expect(text).toContain("transfer-encoding: chunked");
      await sleep(100);
      const c = served[served.length - 1];
      expect(c.bufferBytes).toBeLessThanOrEqual(4096 + 16 * 1024);
      // And the next chunked response on it is whole.
      await writeAll(conn, enc.encode("GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"));
      const again = await readResponses(conn, 1, "ok\r\n0\r\n\r\n");
      expect(again.split("x").length - 1).toBe(64 * 1024);
    } finally {
      conn.close();
    }
  });
});

import { after, describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient, type UpstreamRequest } from "./client.ts";
import { UpstreamError } from "./errors.ts";
import { concat, fromLatin1, readAll } from "../../tests/helpers/bytes.ts";
import { listenRaw, type RawUpstream, serveRaw } from "../../tests/helpers/scripted_upstream.ts";

const TIMEOUTS = { connectMs: 2000, readMs: 2000, writeMs: 2000 };
const dec = new TextDecoder();

function req(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    target: "/",
    headers: [["Host", "example.test"]],
    body: null,
    bodyLength: null,
    timeouts: TIMEOUTS,
    ...over,
  };
}

async function errorOf(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error("expected an UpstreamError");
}

describe("UpstreamClient framing", () => {
  const servers: RawUpstream[] = [];
  const client = new UpstreamClient();
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });
  function serve(respond: Parameters<typeof serveRaw>[0]): RawUpstream {
    const s = serveRaw(respond);
    servers.push(s);
    return s;
  }

  it("reads a Content-Length response, keeps header order and case-folds names", async () => {
    const s = serve(() =>
      "HTTP/1.1 201 Created Here\r\nX-B: 2\r\nContent-Length: 5\r\nX-A:  1 \r\n\r\nhello"
    );
    const res = await client.request(s.target, req());
    expect(res.status).toBe(201);
    expect(res.statusText).toBe("Created Here");
    expect(res.headers).toEqual([["x-b", "2"], ["content-length", "5"], ["x-a", "1"]]);
    expect(res.contentLength).toBe(5);
    expect(res.reused).toBe(false);
    expect(dec.decode(await readAll(res.body))).toBe("hello");
  });

  it("reuses the keep-alive connection for the next request", async () => {
    const s = serve((_h, _b, n) => `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr${n}`);
    for (let i = 0; i < 5; i++) {
      const res = await client.request(s.target, req());
      expect(dec.decode(await readAll(res.body))).toBe(`r${i}`);
      expect(res.reused).toBe(i > 0);
    }
    expect(s.accepted()).toBe(1);
  });

  it("decodes chunked bodies with extensions and trailers, split across packets", async () => {
    const s = servers[
      servers.push(listenRaw(async (peer) => {
        while (await peer.readRequest()) {
          await peer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1;x");
          await new Promise((r) => setTimeout(r, 5));
          await peer.write('="q"\r\nhel');
          await new Promise((r) => setTimeout(r, 5));
          await peer.write("lo\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: yes\r\n");
          await new Promise((r) => setTimeout(r, 5));
          await peer.write("\r\n");
        }
      })) - 1
    ];
    for (let i = 0; i < 2; i++) {
      const res = await client.request(s.target, req());
      expect(res.contentLength).toBe(null);
      expect(dec.decode(await readAll(res.body))).toBe("hello, world!!!");
    }
    expect(s.accepted()).toBe(1);
  });

  it("reads a close-delimited body to the end and does not reuse the connection", async () => {
    const s = servers[
      servers.push(listenRaw(async (peer) => {
        await peer.readRequest();
        await peer.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1 ");
        await new Promise((r) => setTimeout(r, 10));
        await peer.write("part2");
        peer.close();
      })) - 1
    ];
    for (let i = 0; i < 2; i++) {
      const res = await client.request(s.target, req());
      expect(res.contentLength).toBe(null);
      expect(dec.decode(await readAll(res.body))).toBe("part1 part2");
    }
    expect(s.accepted()).toBe(2);
  });

  it("opens a new connection after Connection: close", async () => {
    const s = serve(() => "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
    for (let i = 0; i < 2; i++) {
      const res = await client.request(s.target, req());
      expect(dec.decode(await readAll(res.body))).toBe("x");
    }
    expect(s.accepted()).toBe(2);
  });

  it("skips 100 Continue and 103 Early Hints before the final response", async () => {
    const s = serve(() =>
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    );
    const res = await client.request(s.target, req({ method: "POST", body: fromLatin1("x") }));
    expect(res.status).toBe(200);
    expect(res.headers).toEqual([["content-length", "2"]]);
    expect(dec.decode(await readAll(res.body))).toBe("ok");
  });

  it("HEAD with Content-Length has no body, and the connection stays usable", async () => {
    const s = serve((head) =>
      head.startsWith("HEAD")
        ? "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
        : "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nget"
    );
    const res = await client.request(s.target, req({ method: "HEAD" }));
    expect(res.body).toBe(null);
    expect(res.contentLength).toBe(1234);
    const res2 = await client.request(s.target, req());
    expect(dec.decode(await readAll(res2.body))).toBe("get");
    expect(res2.reused).toBe(true);
    expect(s.accepted()).toBe(1);
  });

  it("204 and 304 carry no body even with a Content-Length header", async () => {
    const s = serve((_h, _b, n) =>
      n === 0
        ? "HTTP/1.1 204 No Content\r\n\r\n"
        : n === 1
        ? 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: "x"\r\n\r\n'
        : "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"
    );
    const r1 = await client.request(s.target, req());
    expect([r1.status, r1.body]).toEqual([204, null]);
    const r2 = await client.request(s.target, req());
    expect([r2.status, r2.body]).toEqual([304, null]);
    const r3 = await client.request(s.target, req());
    expect(dec.decode(await readAll(r3.body))).toBe("done");
    expect(s.accepted()).toBe(1);
  });

  it("keeps multiple Set-Cookie headers separate", async () => {
    const s = serve(() =>
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2, c\r\nContent-Length: 0\r\n\r\n"
    );
    const res = await client.request(s.target, req());
    expect(res.headers.filter(([n]) => n === "set-cookie").map(([, v]) => v)).toEqual([
      "a=1; Path=/",
      "b=2, c",
    ]);
    expect(res.body).toBe(null);
  });

  it("passes gzip bytes through exactly (no decoding)", async () => {
    const plain = new TextEncoder().encode("compress me ".repeat(2000));
    const gz = await readAll(
      new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip")),
    );
    const s = serve(() =>
      concat([
        fromLatin1(
          `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`,
        ),
        gz,
      ])
    );
    const res = await client.request(s.target, req());
    expect(res.headers).toContainEqual(["content-encoding", "gzip"]);
    expect(await readAll(res.body)).toEqual(gz);
  });

  it("keeps latin1 header bytes as single bytes both ways", async () => {
    let seen = "";
    const s = serve((head) => {
      seen = head;
      return "HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n";
    });
    const res = await client.request(
      s.target,
      req({ headers: [["Host", "h"], ["X-V", "\xe9t\xe9"]] }),
    );
    expect(res.headers).toEqual([["x-name", "caf\xe9"], ["content-length", "0"]]);
    expect(seen).toContain("X-V: \xe9t\xe9\r\n");
  });
});

describe("UpstreamClient request encoding", () => {
  const client = new UpstreamClient();
  let last: { head: string; body: Uint8Array } = { head: "", body: new Uint8Array(0) };
  const s = serveRaw((head, body) => {
    last = { head, body };
    return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  });
  after(() => {
    client.close();
    s.close();
  });

  it("sends method, target and headers in order with Content-Length for bytes", async () => {
    await client.request(
      s.target,
      req({
        method: "PUT",
        target: "/a/b?x=1&y=%20",
        headers: [["Host", "h.test"], ["X-One", "1"], ["x-two", "2"]],
        body: fromLatin1("payload"),
      }),
    );
    expect(last.head).toBe(
      "PUT /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h.test\r\nX-One: 1\r\nx-two: 2\r\nContent-Length: 7\r\n\r\n",
    );
    expect(dec.decode(last.body)).toBe("payload");
  });

  it("sends Content-Length: 0 for a bodiless POST and nothing for GET", async () => {
    await client.request(s.target, req({ method: "POST" }));
    expect(last.head).toContain("\r\nContent-Length: 0\r\n");
    await client.request(s.target, req());
    expect(last.head).not.toMatch(/content-length|transfer-encoding/i);
  });

  it("streams a body of unknown length chunked, and of known length as is", async () => {
    const parts = ["ab", "", "cde", "f".repeat(70000)];
    await client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from(parts.map(fromLatin1)) }),
    );
    expect(last.head).toContain("\r\nTransfer-Encoding: chunked\r\n");
    expect(dec.decode(last.body)).toBe(parts.join(""));
    await client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from(parts.map(fromLatin1)), bodyLength: 70005 }),
    );
    expect(last.head).toContain("\r\nContent-Length: 70005\r\n");
    expect(dec.decode(last.body)).toBe(parts.join(""));
  });

  it("sends a large byte body (beyond the inline size) completely", async () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    await client.request(s.target, req({ method: "POST", body: big }));
    expect(last.body).toEqual(big);
  });

  it("rejects a stream that delivers fewer or more bytes than its length", async () => {
    const short = await errorOf(client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from([fromLatin1("abc")]), bodyLength: 10 }),
    ));
    expect(short.kind).toBe("protocol");
    const long = await errorOf(client.request(
      s.target,
      req({ method: "POST", body: ReadableStream.from([fromLatin1("abcdef")]), bodyLength: 2 }),
    ));
    expect(long.kind).toBe("protocol");
  });
});

describe("UpstreamClient malformed responses", () => {
  const client = new UpstreamClient({ maxHeadSize: 1024 });
  const servers: RawUpstream[] = [];
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });
  const cases: [string, string][] = [
    ["bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"],
    ["not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"],
    ["header without colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"],
    ["space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n"],
    ["obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\n\r\n"],
    [
      "two different Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ["list of different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab"],
    [
      "Content-Length and Transfer-Encoding",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    ["non-numeric Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n1"],
    ["negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
  ];
  for (const [name, bytes] of cases) {
    it(`rejects ${name} with kind "protocol"`, async () => {
      const s = serveRaw(() => bytes);
      servers.push(s);
      const err = await errorOf(client.request(s.target, req()));
      expect(err.kind).toBe("protocol");
      expect(err.dial).toBe(false);
      expect(err.requestSent).toBe(true);
    });
  }

  it("accepts equal duplicate Content-Lengths", async () => {
    const s = serveRaw(() =>
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab"
    );
    servers.push(s);
    const res = await client.request(s.target, req());
    expect(dec.decode(await readAll(res.body))).toBe("ab");
  });

  for (
    const [name, body] of [
      ["bad chunk size", "zz\r\nab\r\n0\r\n\r\n"],
      ["missing CRLF after chunk data", "2\r\nabXY0\r\n\r\n"],
      ["chunk size overflow", "fffffffffffffffff\r\n"],
    ]
  ) {
    it(`errors the body stream on ${name}`, async () => {
      const s = serveRaw(() => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
      servers.push(s);
      const res = await client.request(s.target, req());
      const err = await errorOf(readAll(res.body));
      expect(err.kind).toBe("protocol");
    });
  }

  it("rejects an endless stream of interim responses", async () => {
    const s = serveRaw(() => "HTTP/1.1 103 Early Hints\r\n\r\n".repeat(50));
    servers.push(s);
    const err = await errorOf(client.request(s.target, req()));
    expect(err.kind).toBe("protocol");
  });

  it("rejects a head larger than maxHeadSize", async () => {
    const s = serveRaw(() => "HTTP/1.1 200 OK\r\nX-Big: " + "a".repeat(2000) + "\r\n\r\n");
    servers.push(s);
    const err = await errorOf(client.request(s.target, req()));
    expect(err.kind).toBe("head_too_large");
  });
});

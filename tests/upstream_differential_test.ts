/**
 * Differential test: the same raw upstream bytes go to our client and to node:http's client (a
 * different implementation); status, headers (order-insensitive, repeats kept) and body bytes
 * must agree.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { request as nodeRequest } from "node:http";
import { UpstreamClient } from "../src/upstream/client.ts";
import { concat, fromLatin1, readAll } from "./helpers/bytes.ts";
import { listenRaw } from "./helpers/scripted_upstream.ts";

interface Seen {
  status: number;
  headers: string[];
  body: number[];
}

const gz = await readAll(
  new Blob([new TextEncoder().encode("zip ".repeat(500))]).stream().pipeThrough(
    new CompressionStream("gzip"),
  ),
);

const CASES: [string, string, Uint8Array | string][] = [
  [
    "Content-Length",
    "GET",
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
  ],
  [
    "chunked with extensions and trailers",
    "GET",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nwiki\r\n5;c\r\npedia\r\n0\r\nExpires: never\r\n\r\n",
  ],
  ["close-delimited", "GET", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end"],
  ["HTTP/1.0 close-delimited", "GET", "HTTP/1.0 200 OK\r\n\r\nold style"],
  [
    "repeated headers",
    "GET",
    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2; HttpOnly\r\nVary: A\r\nVary: B\r\nContent-Length: 0\r\n\r\n",
  ],
  ["204", "GET", "HTTP/1.1 204 No Content\r\nX-Y: z\r\n\r\n"],
  ["304", "GET", 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'],
  ["HEAD with Content-Length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n"],
  [
    "100 and 103 first",
    "GET",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
  ],
  [
    "whitespace around values",
    "GET",
    "HTTP/1.1 200 OK\r\nX-Pad: \t spaced out \t\r\nContent-Length: 1\r\n\r\n!",
  ],
  ["status without reason", "GET", "HTTP/1.1 418 \r\nContent-Length: 3\r\n\r\ntea"],
  [
    "redirect",
    "GET",
    "HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
  ],
  [
    "gzip bytes",
    "GET",
    concat([
      fromLatin1(
        `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`,
      ),
      gz,
    ]),
  ],
  [
    "binary body",
    "GET",
    concat([
      fromLatin1("HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n"),
      Uint8Array.from({ length: 256 }, (_, i) => i),
    ]),
  ],
];

function normalize(status: number, pairs: [string, string][], body: Uint8Array): Seen {
  return {
    status,
    headers: pairs.map(([n, v]) => `${n.toLowerCase()}: ${v}`).sort(),
    body: [...body],
  };
}

function viaNode(port: number, method: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const r = nodeRequest(
      { host: "127.0.0.1", port, method, path: "/", agent: false },
      (res) => {
        const parts: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => parts.push(new Uint8Array(c)));
        res.on("end", () => {
          const pairs: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
          }
          resolve(normalize(res.statusCode!, pairs, concat(parts)));
        });
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    r.end();
  });
}

describe("UpstreamClient agrees with node:http on the same bytes", () => {
  const client = new UpstreamClient();
  const servers: { close(): void }[] = [];
  after(() => {
    client.close();
    for (const s of servers) s.close();
  });

  for (const [name, method, bytes] of CASES) {
    it(name, async () => {
      // Each connection gets the response once, then the server closes (node uses agent: false).
      const s = listenRaw(async (peer) => {
        await peer.readRequest();
        await peer.write(bytes);
        peer.close();
      });
      servers.push(s);
      const res = await client.request(s.target, {
        method,
        target: "/",
        headers: [["Host", "diff.test"]],
        body: null,
        bodyLength: null,
        timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
      });
      const ours = normalize(res.status, res.headers, await readAll(res.body));
      const theirs = await viaNode(s.port, method);
      expect(ours).toEqual(theirs);
    });
  }

  const BAD: [string, string][] = [
    ["bad status line", "HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n"],
    ["header without colon", "HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 0\r\n\r\n"],
    [
      "different Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    [
      "bad chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nab\r\n0\r\n\r\n",
    ],
  ];
  for (const [name, bytes] of BAD) {
    it(`both reject: ${name}`, async () => {
      const s = listenRaw(async (peer) => {
        await peer.readRequest();
        await peer.write(bytes);
        peer.close();
      });
      servers.push(s);
      const ours = await (async () => {
        const res = await client.request(s.target, {
          method: "GET",
          target: "/",
          headers: [["Host", "diff.test"]],
          body: null,
          bodyLength: null,
          timeouts: { connectMs: 2000, readMs: 2000, writeMs: 2000 },
        });
        await readAll(res.body);
      })().then(() => "ok", (e) => e.kind);
      const theirs = await viaNode(s.port, "GET").then(() => "ok", () => "error");
      expect(ours).toBe("protocol");
      expect(theirs).toBe("error");
    });
  }
});

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, rawRequest, startEchoBackend } from "./helpers/backends.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";

describe("bad requests get a 4xx and disturb nobody (DEVELOPERS: definition of done)", () => {
  let backend: Backend;
  let bws: TestBws;

  before(async () => {
    backend = startEchoBackend("b");
    bws = await startBws(proxySite([backend.url]));
  });

  after(async () => {
    await bws.close();
    await backend.close();
  });

  const cases: [string, string][] = [
    ["garbage request line", "GARBAGE\r\n\r\n"],
    [
      "Content-Length with Transfer-Encoding (smuggling)",
      "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "two different Content-Lengths",
      "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    ],
    ["obsolete line folding", "GET /x HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n  folded\r\n\r\n"],
    ["missing Host", "GET /x HTTP/1.1\r\n\r\n"],
  ];

  for (const [name, bytes] of cases) {
    it(`answers 400 to ${name}, never reaching the upstream`, async () => {
      const before = backend.seen.length;
      const raw = await rawRequest(bws.port, bytes, 1000);
      expect(raw).toMatch(/^HTTP\/1\.[01] 400/);
      expect(backend.seen.length).toBe(before);
    });
  }

  it("keeps serving a keep-alive client while another sends garbage", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    const buf = new Uint8Array(65536);
    const ask = async () => {
      await conn.write(new TextEncoder().encode("GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n"));
      const n = await conn.read(buf);
      return new TextDecoder().decode(buf.subarray(0, n ?? 0));
    };
    try {
      expect(await ask()).toMatch(/^HTTP\/1\.1 200/);
      await Promise.all(cases.map(([, bytes]) => rawRequest(bws.port, bytes, 500)));
      expect(await ask()).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      conn.close();
    }
  });
});

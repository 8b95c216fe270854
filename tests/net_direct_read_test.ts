import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { directReader, readsDirectly } from "../src/net/direct_read.ts";
import { TestPki } from "./helpers/test_pki.ts";

/** A connected pair of plain TCP sockets on loopback. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return [client, server];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("directReader", () => {
  it("reads a Deno TCP socket through the runtime's op on this Deno (the measured fast path)", async () => {
    const [client, server] = await tcpPair();
    try {
      // If a Deno upgrade moves the op or the resource id, this fails: the hot loops would
      // quietly fall back to the slower Conn.read.
      expect(readsDirectly(server)).toBe(true);
      const read = directReader(server);
      await client.write(enc.encode("hello"));
      const buf = new Uint8Array(16);
      const n = await read(buf);
      expect(dec.decode(buf.subarray(0, n!))).toBe("hello");
      client.closeWrite();
      // EOF is a falsy count (0 from the op, null from Conn.read): both end the callers' loops.
      expect(await read(buf)).toBeFalsy();
    } finally {
      client.close();
      server.close();
    }
  });

  it("a read pending when the socket is closed rejects, as Conn.read does", async () => {
    const [client, server] = await tcpPair();
    const pending = directReader(server)(new Uint8Array(16));
    server.close();
    await expect(pending).rejects.toThrow();
    client.close();
  });

  it("a stream that is not a Deno socket is read through its own read", async () => {
    const calls: number[] = [];
    const stream = {
      read: (p: Uint8Array) => {
        calls.push(p.length);
        p[0] = 42;
        return Promise.resolve(calls.length === 1 ? 1 : null);
      },
      write: (p: Uint8Array) => Promise.resolve(p.length),
      close: () => {},
    };
    expect(readsDirectly(stream)).toBe(false);
    const read = directReader(stream);
    const buf = new Uint8Array(8);
    expect(await read(buf)).toBe(1);
    expect(buf[0]).toBe(42);
    expect(await read(buf)).toBe(null);
    expect(calls).toEqual([8, 8]);
  });

  it("a stream with its own readInto (a front connection handed to a tunnel) is read through it", async () => {
    const own = (p: Uint8Array) => {
      p[0] = 7;
      return Promise.resolve(1);
    };
    const stream = {
      readInto: own,
      read: () => Promise.reject(new Error("read must not be used")),
      write: (p: Uint8Array) => Promise.resolve(p.length),
      close: () => {},
    };
    const read = directReader(stream);
    expect(read).toBe(own);
    const buf = new Uint8Array(4);
    expect(await read(buf)).toBe(1);
    expect(buf[0]).toBe(7);
  });

  describe("TLS sockets", () => {
    let pki: TestPki;
    before(async () => {
      pki = await TestPki.create();
    });
    after(async () => {
      await Deno.remove(pki.dir, { recursive: true });
    });

    it("a Deno TLS socket is read directly too, decrypted", async () => {
      const leaf = await pki.issue("localhost", ["DNS:localhost", "IP:127.0.0.1"]);
      const listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: leaf.certPem,
        key: leaf.keyPem,
      });
      const [client, server] = await Promise.all([
        Deno.connectTls({
          hostname: "localhost",
          port: listener.addr.port,
          caCerts: [pki.caPem],
        }),
        listener.accept(),
      ]);
      listener.close();
      try {
        expect(readsDirectly(server)).toBe(true);
        await client.write(enc.encode("over tls"));
        const buf = new Uint8Array(64);
        let got = "";
        const read = directReader(server);
        while (got.length < 8) {
          const n = await read(buf);
          if (!n) break;
          got += dec.decode(buf.subarray(0, n));
        }
        expect(got).toBe("over tls");
      } finally {
        client.close();
        server.close();
      }
    });
  });
});

import { describe, it } from "node:test";
import net from "node:net";
import { expect } from "expect";
import {
  ProxyHeaderReader,
  ProxyPrefaceError,
  readProxyPreface,
  readProxyPrefaceFromSocket,
} from "./proxy_preface.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A v2 PROXY header for 192.0.2.1:1000 → 10.0.0.1:80 with `pad` bytes of TLV space. */
function v2(pad = 0): Uint8Array {
  const len = 12 + pad;
  const out = new Uint8Array(16 + len);
  out.set([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  out.set([0x21, 0x11, len >> 8, len & 0xff], 12);
  out.set([192, 0, 2, 1, 10, 0, 0, 1, 0x03, 0xe8, 0, 80], 16);
  return out;
}

/** A loopback server whose first connection is handed to `onConn`; `send` writes to it. */
async function pair(): Promise<{ server: Deno.Conn; client: Deno.Conn; close(): void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const server = await l.accept();
  l.close();
  return {
    server,
    client,
    close() {
      for (const c of [server, client]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

describe("ProxyHeaderReader", () => {
  it("waits for a header split anywhere and keeps the bytes after it", () => {
    const bytes = enc.encode("PROXY TCP4 198.51.100.7 10.0.0.1 4000 80\r\nGET / HTTP/1.1\r\n");
    for (let cut = 1; cut < 42; cut++) {
      const r = new ProxyHeaderReader();
      expect(r.push(bytes.subarray(0, cut))).toBeNull();
      const done = r.push(bytes.subarray(cut))!;
      expect(done.client).toEqual({ hostname: "198.51.100.7", port: 4000 });
      expect(dec.decode(done.rest)).toBe("GET / HTTP/1.1\r\n");
    }
  });

  it("grows for a long v2 header and refuses garbage", () => {
    const r = new ProxyHeaderReader();
    const big = v2(3000);
    expect(r.push(big.subarray(0, 100))).toBeNull();
    const done = r.push(big.subarray(100))!;
    expect(done.header.consumed).toBe(big.length);
    expect(done.rest.length).toBe(0);
    expect(() => new ProxyHeaderReader().push(enc.encode("GET / HTTP/1.1\r\n"))).toThrow(
      ProxyPrefaceError,
    );
  });

  it("names an IPv4-mapped client as IPv4, and no client for LOCAL", () => {
    const mapped = new ProxyHeaderReader().push(
      enc.encode("PROXY TCP6 ::ffff:192.0.2.5 ::1 1 2\r\n"),
    )!;
    expect(mapped.client).toEqual({ hostname: "192.0.2.5", port: 1 });
    const local = v2();
    local[12] = 0x20;
    expect(new ProxyHeaderReader().push(local)!.client).toBeNull();
  });

  it("reads into its own buffer through space/advance", () => {
    const r = new ProxyHeaderReader();
    const bytes = v2(1000);
    let at = 0;
    let done = null;
    while (done === null) {
      const space = r.space();
      const n = Math.min(space.length, 300, bytes.length - at);
      space.set(bytes.subarray(at, at + n));
      at += n;
      done = r.advance(n);
    }
    expect(done.client?.hostname).toBe("192.0.2.1");
  });
});

describe("readProxyPreface (Deno connection)", () => {
  it("reads a header that arrives in pieces", async () => {
    const p = await pair();
    try {
      const header = enc.encode("PROXY TCP4 198.51.100.7 10.0.0.1 4000 80\r\n");
      const reading = readProxyPreface(p.server, 1000);
      await p.client.write(header.subarray(0, 10));
      await new Promise((r) => setTimeout(r, 20));
      await p.client.write(header.subarray(10));
      await p.client.write(enc.encode("hello"));
      const done = await reading;
      expect(done.client?.hostname).toBe("198.51.100.7");
      // "hello" came in the same read or waits in the socket.
      const more = new Uint8Array(16);
      const got = done.rest.length > 0 ? dec.decode(done.rest) : dec.decode(
        more.subarray(0, (await p.server.read(more))!),
      );
      expect(got).toBe("hello");
    } finally {
      p.close();
    }
  });

  it("fails on a timeout, on EOF and on garbage", async () => {
    const silent = await pair();
    const started = Date.now();
    await expect(readProxyPreface(silent.server, 100)).rejects.toThrow(/within 100 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    silent.close();

    const eof = await pair();
    const reading = readProxyPreface(eof.server, 1000);
    await eof.client.write(enc.encode("PROXY TCP4"));
    eof.client.close();
    await expect(reading).rejects.toThrow(/closed the connection first/);
    eof.close();

    const garbage = await pair();
    const g = readProxyPreface(garbage.server, 1000);
    await garbage.client.write(enc.encode("GET / HTTP/1.1\r\n\r\n"));
    await expect(g).rejects.toThrow(ProxyPrefaceError);
    garbage.close();
  });
});

describe("readProxyPrefaceFromSocket (node socket)", () => {
  it("puts the bytes after the header back for the next reader", async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const client = net.connect({ port, host: "127.0.0.1" });
    try {
      const sock = await accepted;
      const reading = readProxyPrefaceFromSocket(sock, 1000);
      client.write(v2());
      client.write("after the header");
      const done = await reading;
      expect(done.client).toEqual({ hostname: "192.0.2.1", port: 1000 });
      expect(done.rest.length).toBe(0);
      const rest = await new Promise<string>((resolve) => {
        let text = "";
        sock.on("data", (b: Uint8Array) => {
          text += dec.decode(b);
          if (text.length >= 16) resolve(text);
        });
        sock.resume();
      });
      expect(rest).toBe("after the header");
      sock.destroy();
    } finally {
      client.destroy();
      server.close();
    }
  });

  it("fails on a timeout", async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client = net.connect({
      port: (server.address() as net.AddressInfo).port,
      host: "127.0.0.1",
    });
    try {
      const sock = await accepted;
      await expect(readProxyPrefaceFromSocket(sock, 80)).rejects.toThrow(/within 80 ms/);
      sock.destroy();
    } finally {
      client.destroy();
      server.close();
    }
  });
});

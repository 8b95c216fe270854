import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { formatIpv6, parseProxyHeader, PROXY_V1_MAX } from "./proxy_protocol.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A v2 header: command (0 LOCAL, 1 PROXY), family byte, address block, then TLV bytes. */
function v2(cmd: number, fam: number, addresses: number[], tlvs: number[] = []): Uint8Array {
  const len = addresses.length + tlvs.length;
  return new Uint8Array([...SIG, 0x20 | cmd, fam, len >> 8, len & 0xff, ...addresses, ...tlvs]);
}

const be16 = (n: number) => [n >> 8, n & 0xff];

describe("parseProxyHeader: v1", () => {
  it("TCP4 and TCP6 lines, followed by the client's bytes", () => {
    const bytes = enc.encode("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n");
    expect(parseProxyHeader(bytes)).toEqual({
      kind: "header",
      version: 1,
      consumed: 44,
      command: "proxy",
      family: "tcp4",
      source: { hostname: "203.0.113.7", port: 56324 },
      destination: { hostname: "192.0.2.1", port: 443 },
    });
    const six = parseProxyHeader(enc.encode("PROXY TCP6 2001:DB8:0:0::1 ::1 1 65535\r\n"));
    expect(six).toMatchObject({
      family: "tcp6",
      source: { hostname: "2001:db8::1", port: 1 },
      destination: { hostname: "::1", port: 65535 },
    });
  });

  it("UNKNOWN: the rest of the line is ignored and no address is given", () => {
    for (const line of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"]) {
      expect(parseProxyHeader(enc.encode(line + "x"))).toMatchObject({
        kind: "header",
        consumed: line.length,
        family: "unknown",
        source: null,
      });
    }
  });

  it("asks for more bytes until the line is complete, at an offset inside a buffer", () => {
    const full = enc.encode("xxPROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n");
    for (let end = 2; end < full.length; end++) {
      expect(parseProxyHeader(full, 2, end).kind).toBe("need-more");
    }
    expect(parseProxyHeader(full, 2, full.length)).toMatchObject({ consumed: full.length - 2 });
  });

  it("refuses malformed lines", () => {
    const bad = [
      "GET / HTTP/1.1\r\n",
      "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX",
      "PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
      "PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n",
      "PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n",
      "PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
      "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n",
      "PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
      "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
      "PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n",
    ];
    for (const line of bad) {
      const r = parseProxyHeader(enc.encode(line));
      expect({ line, kind: r.kind }).toEqual({ line, kind: "error" });
    }
  });

  it("a line is at most 107 bytes with its CRLF", () => {
    const pad = (n: number) => "PROXY UNKNOWN " + "x".repeat(n - 16) + "\r\n";
    expect(pad(PROXY_V1_MAX).length).toBe(107);
    expect(parseProxyHeader(enc.encode(pad(107))).kind).toBe("header");
    expect(parseProxyHeader(enc.encode(pad(108))).kind).toBe("error");
    // 106 bytes without a CR cannot become a line of 107: it fails without waiting for more.
    expect(parseProxyHeader(enc.encode("PROXY UNKNOWN " + "x".repeat(92))).kind).toBe("error");
    expect(parseProxyHeader(enc.encode("PROXY UNKNOWN " + "x".repeat(91))).kind).toBe("need-more");
  });
});

describe("parseProxyHeader: v2", () => {
  it("PROXY over TCP4 and TCP6, TLVs skipped", () => {
    const four = v2(1, 0x11, [203, 0, 113, 7, 192, 0, 2, 1, ...be16(56324), ...be16(443)], [
      0x04, // PP2_TYPE_NOOP
      ...be16(3),
      0,
      0,
      0,
    ]);
    const data = new Uint8Array([...four, 0x47, 0x45, 0x54]);
    expect(parseProxyHeader(data)).toEqual({
      kind: "header",
      version: 2,
      consumed: four.length,
      command: "proxy",
      family: "tcp4",
      source: { hostname: "203.0.113.7", port: 56324 },
      destination: { hostname: "192.0.2.1", port: 443 },
    });
    const src6 = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1];
    const dst6 = [...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1];
    expect(parseProxyHeader(v2(1, 0x21, [...src6, ...dst6, ...be16(1), ...be16(2)])))
      .toMatchObject({
        family: "tcp6",
        source: { hostname: "2001:db8::1", port: 1 },
        destination: { hostname: "::ffff:127.0.0.1", port: 2 },
      });
  });

  it("LOCAL (a health check), UNSPEC, UNIX and datagrams carry no client address", () => {
    expect(parseProxyHeader(v2(0, 0x00, []))).toMatchObject({
      command: "local",
      family: "unknown",
      source: null,
      consumed: 16,
    });
    expect(parseProxyHeader(v2(0, 0x11, Array(12).fill(1)))).toMatchObject({
      command: "local",
      source: null,
    });
    expect(parseProxyHeader(v2(1, 0x00, [1, 2, 3]))).toMatchObject({
      family: "unknown",
      consumed: 19,
    });
    expect(parseProxyHeader(v2(1, 0x31, Array(216).fill(0x41)))).toMatchObject({
      family: "unix",
      source: null,
    });
    expect(parseProxyHeader(v2(1, 0x12, Array(12).fill(1)))).toMatchObject({
      family: "unknown",
      source: null,
    });
  });

  it("asks for more until the whole length has arrived", () => {
    const h = v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2], Array(100).fill(0));
    for (let end = 1; end < h.length; end++) {
      expect(parseProxyHeader(h, 0, end).kind).toBe("need-more");
    }
    expect(parseProxyHeader(h).kind).toBe("header");
  });

  it("refuses a wrong signature, version, command, family or a length too short", () => {
    const ok = v2(1, 0x11, Array(12).fill(1));
    const bad = (i: number, value: number) => {
      const b = ok.slice();
      b[i] = value;
      return parseProxyHeader(b).kind;
    };
    expect(bad(7, 0x50)).toBe("error"); // signature
    expect(bad(12, 0x11)).toBe("error"); // version 1 in a v2 header
    expect(bad(12, 0x22)).toBe("error"); // command 2
    expect(bad(13, 0x41)).toBe("error"); // family 4
    expect(bad(13, 0x13)).toBe("error"); // transport 3
    expect(bad(15, 11)).toBe("error"); // 11 < 12 bytes for two IPv4 addresses
    expect(parseProxyHeader(v2(1, 0x21, Array(35).fill(0))).kind).toBe("error");
  });
});

describe("formatIpv6", () => {
  it("writes RFC 5952 text", () => {
    const f = (groups: number[]) =>
      formatIpv6(new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff])), 0);
    expect(f([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])).toBe("2001:db8::1:0:0:1");
    expect(f([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])).toBe("2001:db8:0:1:1:1:1:1");
    expect(f([0, 0, 0, 0, 0, 0, 0, 0])).toBe("::");
    expect(f([0, 0, 0, 0, 0, 0, 0, 1])).toBe("::1");
    expect(f([1, 0, 0, 0, 0, 0, 0, 0])).toBe("1::");
    expect(f([0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0])).toBe("fe80::abcd:0:0:0");
  });
});

const HAPROXY = "/usr/sbin/haproxy";
const hasHaproxy = await Deno.stat(HAPROXY).then(() => true, () => false);
if (!hasHaproxy) {
  console.log(`HAProxy tests skipped: ${HAPROXY} is missing (Debian package haproxy)`);
}

function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function connectWhenUp(hostname: string, port: number): Promise<Deno.Conn> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await Deno.connect({ hostname, port });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("parseProxyHeader: what HAProxy sends", { skip: !hasHaproxy }, () => {
  for (
    const [mode, front] of [
      ["send-proxy-v2", "127.0.0.1"],
      ["send-proxy", "127.0.0.1"],
      ["send-proxy-v2", "::1"],
      ["send-proxy", "::1"],
    ] as const
  ) {
    it(`${mode}, client on ${front}: the header names the client's address and port`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "bws-haproxy-" });
      const capture = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const frontPort = freePort(front);
      const bind = front.includes(":") ? `[${front}]:${frontPort}` : `${front}:${frontPort}`;
      const cfg = join(dir, "haproxy.cfg");
      await Deno.writeTextFile(
        cfg,
        `global
  maxconn 100
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend f
  bind ${bind}
  default_backend b
backend b
  server s 127.0.0.1:${(capture.addr as Deno.NetAddr).port} ${mode}
`,
      );
      const child = new Deno.Command(HAPROXY, {
        args: ["-db", "-f", cfg],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let clientConn: Deno.Conn | null = null;
      try {
        clientConn = await connectWhenUp(front, frontPort);
        await clientConn.write(enc.encode("hello"));
        const upstream = await capture.accept();
        const buf = new Uint8Array(4096);
        let end = 0;
        let result = parseProxyHeader(buf, 0, 0);
        while (
          result.kind === "need-more" || end < (result.kind === "header" ? result.consumed + 5 : 0)
        ) {
          const n = await upstream.read(buf.subarray(end));
          if (n === null) break;
          end += n;
          result = parseProxyHeader(buf, 0, end);
        }
        upstream.close();
        expect(result.kind).toBe("header");
        if (result.kind !== "header") return;
        const local = clientConn.localAddr as Deno.NetAddr;
        expect(result.version).toBe(mode === "send-proxy" ? 1 : 2);
        expect(result.command).toBe("proxy");
        expect(result.family).toBe(front.includes(":") ? "tcp6" : "tcp4");
        expect(result.source).toEqual({ hostname: front, port: local.port });
        expect(result.destination).toEqual({ hostname: front, port: frontPort });
        expect(new TextDecoder().decode(buf.subarray(result.consumed, end))).toBe("hello");
      } finally {
        clientConn?.close();
        capture.close();
        child.kill("SIGTERM");
        await child.stderr.cancel();
        await child.status;
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

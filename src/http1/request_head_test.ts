import { describe, it } from "node:test";
import { expect } from "expect";
import { HttpError } from "./errors.ts";
import {
  findRequestHeadEnd,
  isHttp2Preface,
  parseRequestHead,
  type RequestHead,
} from "./request_head.ts";

const limits = { maxHeaderSize: 1024, maxHeaders: 10 };
/** One byte per char, so NUL, CR and 0x80+ bytes go in exactly. */
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** findRequestHeadEnd + parseRequestHead over the whole string, as the front end runs them. */
function parse(s: string, lim = limits): RequestHead {
  const buf = bytes(s);
  const end = findRequestHeadEnd(buf, 0, buf.length, lim);
  if (end === -1) throw new Error(`incomplete head: ${JSON.stringify(s)}`);
  return parseRequestHead(buf, 0, end, lim);
}

/** The HttpError status `s` is refused with (or "accepted"). */
function status(s: string, lim = limits): number | "accepted" {
  try {
    parse(s, lim);
    return "accepted";
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    expect(err.message).toMatch(/^Cannot parse request head: /);
    return err.status;
  }
}

const H = "Host: a.test\r\n";

describe("findRequestHeadEnd", () => {
  it("finds the end of a complete head and leaves what follows", () => {
    const s = `GET / HTTP/1.1\r\n${H}\r\nGET /next`;
    expect(findRequestHeadEnd(bytes(s), 0, s.length, limits)).toBe(s.indexOf("GET /next"));
  });

  it("answers -1 at every split point, then the same end, also when resumed with `from`", () => {
    const s = `\r\nPOST /x HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nhi`;
    const want = s.indexOf("hi");
    const buf = bytes(s);
    let from = 0;
    for (let end = 0; end <= s.length; end++) {
      const fresh = findRequestHeadEnd(buf, 0, end, limits);
      const resumed = findRequestHeadEnd(buf, 0, end, limits, from);
      expect([end, fresh, resumed]).toEqual([end, end < want ? -1 : want, end < want ? -1 : want]);
      if (resumed === -1) from = end;
    }
  });

  it("skips up to 8 empty lines before the request line, and refuses a 9th", () => {
    const ok = `${"\r\n".repeat(8)}GET / HTTP/1.1\r\n${H}\r\n`;
    expect(findRequestHeadEnd(bytes(ok), 0, ok.length, limits)).toBe(ok.length);
    expect(parse(ok).path).toBe("/");
    const bad = bytes(`${"\r\n".repeat(9)}GET / HTTP/1.1\r\n${H}\r\n`);
    expect(() => findRequestHeadEnd(bad, 0, bad.length, limits)).toThrow(/empty lines/);
  });

  for (
    const [name, partial] of [
      ["a bare LF ending the request line", "GET / HTTP/1.1\nHost"],
      ["a bare LF ending a header line", `GET / HTTP/1.1\r\nHost: a\nX`],
      ["a bare LF before the request line", "\nGET / HTTP/1.1\r\n"],
      ["a CR followed by another byte", "GET / HTTP/1.1\rHost: a"],
      ["bare CR line ends", "GET / HTTP/1.1\r\r"],
      ["a NUL in the request line", "GET /\x00"],
      ["a DEL in a header value", `GET / HTTP/1.1\r\nX: \x7f`],
      ["an escape byte", "\x1b[A"],
      ["a TLS ClientHello", "\x16\x03\x01\x02\x00\x01"],
    ]
  ) {
    it(`refuses ${name} at once with 400, before the head is complete`, () => {
      const buf = bytes(partial);
      let caught: unknown = null;
      try {
        findRequestHeadEnd(buf, 0, buf.length, limits);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(HttpError);
      expect((caught as HttpError).status).toBe(400);
    });
  }

  it("answers 431 once maxHeaderSize bytes hold no head end, and accepts a head of exactly that size", () => {
    const line = `GET / HTTP/1.1\r\n${H}X: `;
    const exact = line + "a".repeat(limits.maxHeaderSize - line.length - 4) + "\r\n\r\n";
    expect(exact.length).toBe(limits.maxHeaderSize);
    // Leading empty lines do not count.
    const withEmpty = "\r\n\r\n" + exact;
    expect(findRequestHeadEnd(bytes(withEmpty), 0, withEmpty.length, limits)).toBe(
      withEmpty.length,
    );
    expect(parse(withEmpty).headers.at(-1)![1].length).toBe(limits.maxHeaderSize - line.length - 4);
    const over = line + "a".repeat(limits.maxHeaderSize - line.length - 3) + "\r\n\r\n";
    expect(status(over)).toBe(431);
    const incomplete = bytes(over.slice(0, limits.maxHeaderSize));
    expect(() => findRequestHeadEnd(incomplete, 0, incomplete.length, limits)).toThrow(HttpError);
    expect(findRequestHeadEnd(incomplete, 0, incomplete.length - 1, limits)).toBe(-1);
  });

  it("scans only buf[start, end) of a larger buffer", () => {
    const buf = bytes(`xxGET / HTTP/1.1\r\n${H}\r\n\x00\x00`);
    expect(findRequestHeadEnd(buf, 2, buf.length - 2, limits)).toBe(buf.length - 2);
    expect(findRequestHeadEnd(buf, 2, buf.length - 3, limits)).toBe(-1);
    expect(parseRequestHead(buf, 2, buf.length - 2, limits).host).toBe("a.test");
  });
});

describe("parseRequestHead", () => {
  it("parses a typical head into its parts", () => {
    const head =
      "GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent:  curl/8 \t\r\n" +
      "X-Empty:\r\nx-dup: 1\r\nX-Dup: 2\r\nAccept: */*\r\n\r\n";
    expect(parse(head + "NEXT")).toEqual({
      method: "GET",
      target: "/a/b%20c?x=1&y=%2F",
      path: "/a/b%20c",
      query: "?x=1&y=%2F",
      version: "1.1",
      headers: [
        ["host", "a.test:8080"],
        ["user-agent", "curl/8"],
        ["x-empty", ""],
        ["x-dup", "1"],
        ["x-dup", "2"],
        ["accept", "*/*"],
      ],
      host: "a.test:8080",
      contentLength: null,
      chunked: false,
      keepAlive: true,
      expectContinue: false,
      upgrade: null,
      end: head.length,
    });
  });

  it("keeps the target byte-for-byte: fragments, extra ?, any visible ASCII", () => {
    const h = parse(`GET /p#f?q?r="<{|}>"\\^\` HTTP/1.1\r\n${H}\r\n`);
    expect([h.path, h.query]).toEqual(["/p#f", '?q?r="<{|}>"\\^`']);
  });

  it("decodes obs-text in values as latin1", () => {
    const h = parse(`GET / HTTP/1.1\r\n${H}X-Name: caf\xe9 \x80\xff\r\n\r\n`);
    expect(h.headers[1]).toEqual(["x-name", "caf\u00e9 \u0080\u00ff"]);
  });

  it("takes the host of an absolute-form target over Host, with its path and query", () => {
    for (
      const [target, host, path, query] of [
        ["http://b.test/x?y", "b.test", "/x", "?y"],
        ["HTTPS://B.test:8443", "B.test:8443", "/", ""],
        ["http://b.test?q=1", "b.test", "/", "?q=1"],
        ["http://[::1]:80/", "[::1]:80", "/", ""],
      ]
    ) {
      const h = parse(`GET ${target} HTTP/1.1\r\n${H}\r\n`);
      expect([h.target, h.host, h.path, h.query]).toEqual([target, host, path, query]);
    }
  });

  it("accepts * only for OPTIONS and authority-form only for CONNECT", () => {
    expect(parse(`OPTIONS * HTTP/1.1\r\n${H}\r\n`).path).toBe("*");
    const connect = parse(`CONNECT b.test:443 HTTP/1.1\r\n${H}\r\n`);
    expect([connect.method, connect.target, connect.path, connect.host]).toEqual([
      "CONNECT",
      "b.test:443",
      "",
      "a.test",
    ]);
    for (
      const line of [
        "GET * HTTP/1.1",
        "OPTIONS *x HTTP/1.1",
        "GET b.test:443 HTTP/1.1",
        "CONNECT / HTTP/1.1",
        "CONNECT b.test HTTP/1.1",
        "CONNECT b.test: HTTP/1.1",
        "GET ftp://b.test/ HTTP/1.1",
        "GET http:/b.test/ HTTP/1.1",
        "GET http:// HTTP/1.1",
        "GET http://u@b.test/ HTTP/1.1",
        "GET http://b.test:x/ HTTP/1.1",
      ]
    ) {
      expect([line, status(`${line}\r\n${H}\r\n`)]).toEqual([line, 400]);
    }
  });

  it("derives keep-alive, upgrade and 100-continue from the fields", () => {
    const pick = (s: string) => {
      const h = parse(s);
      return [h.version, h.keepAlive, h.upgrade, h.expectContinue, h.host];
    };
    expect(pick(`GET / HTTP/1.1\r\n${H}\r\n`)).toEqual(["1.1", true, null, false, "a.test"]);
    expect(pick(`GET / HTTP/1.1\r\n${H}Connection: Close\r\n\r\n`)).toEqual([
      "1.1",
      false,
      null,
      false,
      "a.test",
    ]);
    expect(pick("GET / HTTP/1.0\r\n\r\n")).toEqual(["1.0", false, null, false, null]);
    expect(pick("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).toEqual([
      "1.0",
      true,
      null,
      false,
      null,
    ]);
    expect(pick("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")[1])
      .toBe(false);
    expect(
      pick(`GET / HTTP/1.1\r\n${H}Connection: keep-alive , UPGRADE\r\nUpgrade: websocket\r\n\r\n`),
    ).toEqual(["1.1", true, "websocket", false, "a.test"]);
    expect(pick(`GET / HTTP/1.1\r\n${H}Upgrade: websocket\r\n\r\n`)[2]).toBe(null);
    expect(pick(`GET / HTTP/1.1\r\n${H}Connection: upgraded\r\nUpgrade: h2c\r\n\r\n`)[2])
      .toBe(null);
    expect(pick(`PUT / HTTP/1.1\r\n${H}Expect: 100-Continue\r\n\r\n`)[3]).toBe(true);
    expect(pick(`PUT / HTTP/1.1\r\n${H}Expect: 100-continued\r\n\r\n`)[3]).toBe(false);
  });

  describe("Content-Length", () => {
    const cl = (...values: string[]) =>
      `POST / HTTP/1.1\r\n${H}${values.map((v) => `Content-Length: ${v}\r\n`).join("")}\r\n`;

    it("reads 1*DIGIT up to 15 digits, and identical repeated fields as one", () => {
      expect(parse(cl("0")).contentLength).toBe(0);
      expect(parse(cl("0042")).contentLength).toBe(42);
      expect(parse(cl("999999999999999")).contentLength).toBe(999999999999999);
      expect(parse(cl("3 ")).contentLength).toBe(3);
      expect(parse(cl("3", "3")).contentLength).toBe(3);
    });

    for (
      const values of [
        [""],
        ["+3"],
        ["-1"],
        ["3.0"],
        ["0x3"],
        ["3 3"],
        ["3,3"],
        ["3, 3"],
        ["1e3"],
        ["1000000000000000"],
        ["3", "4"],
        ["3", ""],
      ]
    ) {
      it(`refuses ${JSON.stringify(values)} with 400`, () => {
        expect(status(cl(...values))).toBe(400);
      });
    }
  });

  describe("Transfer-Encoding", () => {
    const te = (fields: string, version = "1.1") => `POST / HTTP/${version}\r\n${H}${fields}\r\n`;

    it("accepts exactly chunked, in any case", () => {
      for (const v of ["chunked", "Chunked", "CHUNKED"]) {
        const h = parse(te(`Transfer-Encoding: ${v}\r\n`));
        expect([h.chunked, h.contentLength]).toEqual([true, null]);
      }
    });

    it("answers 501 to other codings before chunked", () => {
      expect(status(te("Transfer-Encoding: gzip, chunked\r\n"))).toBe(501);
      expect(status(te("Transfer-Encoding: deflate,chunked\r\n"))).toBe(501);
    });

    for (
      const fields of [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked;q=1\r\n",
        "Transfer-Encoding: , chunked\r\n",
        "Transfer-Encoding: chunked,\r\n",
        "Transfer-Encoding: \r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
      ]
    ) {
      it(`refuses ${JSON.stringify(fields)} with 400`, () => {
        expect(status(te(fields))).toBe(400);
      });
    }

    it("refuses Transfer-Encoding in an HTTP/1.0 request", () => {
      expect(status(te("Transfer-Encoding: chunked\r\n", "1.0"))).toBe(400);
    });
  });

  describe("Host", () => {
    it("needs exactly one Host in HTTP/1.1, at most one in HTTP/1.0", () => {
      expect(status("GET / HTTP/1.1\r\n\r\n")).toBe(400);
      expect(status(`GET / HTTP/1.1\r\n${H}${H}\r\n`)).toBe(400);
      expect(status(`GET / HTTP/1.0\r\n${H}${H}\r\n`)).toBe(400);
      expect(status(`GET http://b.test/ HTTP/1.1\r\n\r\n`)).toBe(400);
    });

    for (
      const host of [
        "localhost",
        "localhost:99999",
        "a.test:",
        "xn--caf-dma.test",
        "a_b~c!$&'()*+,;=.test",
        "%41.test",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "[2001:db8::1]",
        "[1:2:3:4:5:6:7:8]",
        "[::ffff:192.0.2.1]",
        "[v1.fe80::a+en1]",
      ]
    ) {
      it(`accepts Host ${JSON.stringify(host)}`, () => {
        expect(parse(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).host).toBe(host);
      });
    }

    for (
      const host of [
        "",
        "local host",
        "user@localhost",
        "evil/raw",
        "h?x",
        "h#x",
        "\xe9.test",
        "a:b:c",
        ":80",
        "%4.test",
        "%zz",
        "[::1",
        "::1",
        "[::1]x",
        "[1:2:3:4:5:6:7:8:9]",
        "[1::2::3]",
        "[12345::1]",
        "[::256.0.0.1]",
        "[::1.2.3]",
        "[g::1]",
        "[v.x]",
        'a"b',
      ]
    ) {
      it(`refuses Host ${JSON.stringify(host)} with 400`, () => {
        expect(status(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`)).toBe(400);
      });
    }
  });

  describe("request line", () => {
    it("accepts any token as method, case-sensitive", () => {
      expect(parse(`M-SEARCH / HTTP/1.1\r\n${H}\r\n`).method).toBe("M-SEARCH");
      expect(parse(`get / HTTP/1.1\r\n${H}\r\n`).method).toBe("get");
    });

    for (
      const [line, want] of [
        ["GET  / HTTP/1.1", 400],
        [" GET / HTTP/1.1", 400],
        ["GET / HTTP/1.1 ", 400],
        ["GET\t/ HTTP/1.1", 400],
        ["GET /\tx HTTP/1.1", 400],
        ["GET /\xe9 HTTP/1.1", 400],
        ["GET x HTTP/1.1", 400],
        ["G(T / HTTP/1.1", 400],
        ["/ HTTP/1.1", 400],
        ["GET /", 400],
        ["GET / HTTP/1.1x", 400],
        ["GET / http/1.1", 400],
        ["GET / HTTP/1", 400],
        ["GET / HTTP/10.1", 400],
        ["GET / HTTP/1.10", 400],
        ["GET / HTTPS/1.1", 400],
        ["GET / HTTP/1.2", 505],
        ["GET / HTTP/2.0", 505],
        ["GET / HTTP/0.9", 505],
        ["GET / HTTP/3.0", 505],
      ] as const
    ) {
      it(`answers ${want} to ${JSON.stringify(line)}`, () => {
        expect(status(`${line}\r\n${H}\r\n`)).toBe(want);
      });
    }

    it("recognises the HTTP/2 connection preface", () => {
      const preface = bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      const end = findRequestHeadEnd(preface, 0, preface.length, limits);
      expect(end).toBe(18);
      let caught: HttpError | null = null;
      try {
        parseRequestHead(preface, 0, end, limits);
      } catch (err) {
        caught = err as HttpError;
      }
      expect([caught?.status, caught?.http2Preface]).toEqual([505, true]);
      expect(isHttp2Preface(preface, 0, preface.length)).toBe(true);
      expect(isHttp2Preface(preface, 0, preface.length - 1)).toBe(false);
      expect(isHttp2Preface(bytes("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), 0, 24)).toBe(false);
      const other = bytes(`GET / HTTP/2.0\r\n${H}\r\n`);
      try {
        parseRequestHead(other, 0, other.length, limits);
      } catch (err) {
        caught = err as HttpError;
      }
      expect([caught?.status, caught?.http2Preface]).toEqual([505, false]);
    });
  });

  describe("header lines", () => {
    for (
      const [name, fields] of [
        ["a space before the colon", "X-A : 1\r\n"],
        ["a tab before the colon", "X-A\t: 1\r\n"],
        ["an empty name", ": 1\r\n"],
        ["no colon", "X-A 1\r\n"],
        ["a separator in the name", "X(A): 1\r\n"],
        ["obs-text in the name", "X\xe9: 1\r\n"],
        ["obs-fold", "X-A: 1\r\n  2\r\n"],
        ["obs-fold with a tab", "X-A: 1\r\n\t2\r\n"],
        ["a NUL in a value", "X-A: a\x00b\r\n"],
        ["a DEL in a value", "X-A: a\x7fb\r\n"],
        ["a vertical tab in a value", "X-A: a\x0bb\r\n"],
        ["a bare CR in a value", "X-A: a\rb\r\n"],
        ["a bare LF in a value", "X-A: a\nb\r\n"],
      ]
    ) {
      it(`refuses ${name} with 400`, () => {
        expect(status(`GET / HTTP/1.1\r\n${H}${fields}\r\n`)).toBe(400);
      });
    }

    it("refuses whitespace before the first header line (RFC 9112 §2.2)", () => {
      expect(status(`GET / HTTP/1.1\r\n ${H}\r\n`)).toBe(400);
    });

    it("refuses a bare LF when parse is handed such a head directly", () => {
      const buf = bytes(`GET / HTTP/1.1\r\nX: 1\n${H}\r\n`);
      expect(() => parseRequestHead(buf, 0, buf.length, limits)).toThrow(HttpError);
      const noEnd = bytes(`GET / HTTP/1.1\r\n${H}`);
      expect(() => parseRequestHead(noEnd, 0, noEnd.length, limits)).toThrow(/empty line/);
    });

    it("answers 431 past maxHeaders fields", () => {
      const fields = (n: number) => `GET / HTTP/1.1\r\n${H}${"X: 1\r\n".repeat(n - 1)}\r\n`;
      expect(parse(fields(limits.maxHeaders)).headers.length).toBe(limits.maxHeaders);
      expect(status(fields(limits.maxHeaders + 1))).toBe(431);
    });

    it("handles more fields than its position table first holds", () => {
      const many = { maxHeaderSize: 64 * 1024, maxHeaders: 1000 };
      const h = parse(`GET / HTTP/1.1\r\n${H}${"X-N: 1\r\n".repeat(999)}\r\n`, many);
      expect(h.headers.length).toBe(1000);
      expect(h.headers[999]).toEqual(["x-n", "1"]);
    });
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { findHeadEnd, parseResponseHead, readResponseHeadIn } from "./response_head.ts";
import { fromLatin1 } from "../../tests/helpers/bytes.ts";

function parse(text: string) {
  const b = fromLatin1(text);
  const end = findHeadEnd(b, 0, b.length);
  if (end === -1) throw new Error("incomplete");
  return parseResponseHead(b, 0, end);
}

describe("response head parser", () => {
  it("finds the head end with CRLF or bare LF, and -1 when incomplete", () => {
    const a = fromLatin1("HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody");
    expect(findHeadEnd(a, 0, a.length)).toBe(a.length - 4);
    const b = fromLatin1("HTTP/1.1 200 OK\nA: 1\n\nbody");
    expect(findHeadEnd(b, 0, b.length)).toBe(b.length - 4);
    for (let cut = 0; cut < a.length - 4; cut++) expect(findHeadEnd(a, 0, cut)).toBe(-1);
  });

  it("reads framing facts", () => {
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")).toMatchObject({
      contentLength: 10,
      chunked: false,
      keepAlive: true,
    });
    expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")).toMatchObject({
      hasTransferEncoding: true,
      chunked: true,
    });
    expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")).toMatchObject({
      hasTransferEncoding: true,
      chunked: false,
    });
    expect(parse("HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\n\r\n").keepAlive).toBe(false);
    expect(parse("HTTP/1.0 200 OK\r\n\r\n").keepAlive).toBe(false);
    expect(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keepAlive).toBe(true);
  });

  it("keeps empty values and reason phrases with spaces", () => {
    const h = parse("HTTP/1.1 404 Not Found Here\r\nX-Empty:\r\nX-Sp:   \r\n\r\n");
    expect(h.status).toBe(404);
    expect(h.statusText).toBe("Not Found Here");
    expect(h.headers).toEqual([["x-empty", ""], ["x-sp", ""]]);
  });

  it("rejects control characters in values", () => {
    expect(() => parse("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n")).toThrow(/control character/);
    expect(() => parse("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n")).toThrow(/control character/);
  });

  it("reads a head in one pass: null until it is complete, whatever the cut", () => {
    const text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A:  b c \r\n\r\nbody";
    const b = fromLatin1(text);
    const headLength = text.indexOf("body");
    for (let cut = 0; cut < headLength; cut++) expect(readResponseHeadIn(b, 0, cut)).toBeNull();
    const h = readResponseHeadIn(b, 0, b.length)!;
    expect(h.end).toBe(headLength);
    expect(h.headers).toEqual([["content-type", "text/plain"], ["x-a", "b c"]]);
    // The same head further into a buffer.
    const shifted = fromLatin1("xx" + text);
    expect(readResponseHeadIn(shifted, 2, shifted.length)!.end).toBe(headLength + 2);
  });

  it("refuses a bad byte as soon as it arrives, before the head is complete", () => {
    const cases: [string, RegExp][] = [
      ["HTTP/1.1 200 OK\r\n X: y\r\n", /obsolete line folding/],
      ["HTTP/1.1 200 OK\r\nX Y: z\r\n", /bad header name/],
      ["HTTP/1.1 200 OK\r\nNoColon\r\n", /bad header line/],
      ["HTTP/1.1 200 OK\r\nX: a\x7fb\r\n", /control character/],
      ["HTTP/1.1 200 OK\r\nX: a\rb", /control character/],
    ];
    for (const [text, error] of cases) {
      expect(() => readResponseHeadIn(fromLatin1(text), 0, text.length)).toThrow(error);
    }
  });

  it("keeps obs-text in values and reason phrases as latin1", () => {
    const h = parse("HTTP/1.1 200 Ok\xe9\r\nX-A: caf\xe9\r\n\r\n");
    expect(h.statusText).toBe("Ok\xe9");
    expect(h.headers).toEqual([["x-a", "caf\xe9"]]);
  });
});

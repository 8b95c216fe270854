import { describe, it } from "node:test";
import { expect } from "expect";
import { ChunkedDecoder } from "./chunked_decoder.ts";
import { UpstreamError } from "./errors.ts";
import { fromLatin1, latin1 } from "../../tests/helpers/bytes.ts";

/** Feeds `wire` in pieces of `step` bytes, keeping unconsumed bytes like the client does. */
function decodeIn(wire: string, step: number): { out: string; done: boolean; rest: string } {
  const bytes = fromLatin1(wire);
  const dec = new ChunkedDecoder();
  let pending = new Uint8Array(0);
  let out = "";
  for (let i = 0; i < bytes.length && !dec.done; i += step) {
    const next = new Uint8Array(pending.length + Math.min(step, bytes.length - i));
    next.set(pending);
    next.set(bytes.subarray(i, i + step), pending.length);
    const o = new Uint8Array(next.length);
    dec.decode(next, 0, next.length, o);
    out += latin1(o.subarray(0, dec.produced));
    pending = next.slice(dec.consumed);
    if (dec.done) {
      return { out, done: true, rest: latin1(pending) + latin1(bytes.subarray(i + step)) };
    }
  }
  return { out, done: dec.done, rest: latin1(pending) };
}

describe("ChunkedDecoder", () => {
  const wire =
    '4;name="v;x"\r\nWiki\r\n10\r\n0123456789abcdef\r\nA\r\n\x00\x01\x02\x03\x04\x05\x06\x07\x08\xff\r\n' +
    "0;last\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\nNEXT";
  const body = "Wiki0123456789abcdef\x00\x01\x02\x03\x04\x05\x06\x07\x08\xff";

  for (const step of [1, 2, 3, 7, 1000]) {
    it(`decodes the same bytes fed ${step} byte(s) at a time and stops at the message end`, () => {
      const r = decodeIn(wire, step);
      expect(r.out).toBe(body);
      expect(r.done).toBe(true);
      expect(r.rest).toBe("NEXT");
    });
  }

  it("accepts bare LF line ends and upper-case hex", () => {
    expect(decodeIn("A\nabcdefghij\n0\n\n", 4)).toEqual({
      out: "abcdefghij",
      done: true,
      rest: "",
    });
  });

  for (
    const [name, bad] of [
      ["no digits", ";x\r\n"],
      ["junk after size", "5x\r\nhello\r\n"],
      ["missing CRLF after data", "2\r\nabc\r\n"],
      ["too many digits", "1234567890abc\r\n"],
    ]
  ) {
    it(`rejects ${name}`, () => {
      const dec = new ChunkedDecoder();
      const b = fromLatin1(bad);
      expect(() => dec.decode(b, 0, b.length, new Uint8Array(b.length))).toThrow(UpstreamError);
    });
  }

  it("rejects an endless chunk-size line instead of buffering it", () => {
    const dec = new ChunkedDecoder();
    const b = fromLatin1("1;" + "x".repeat(20000));
    expect(() => dec.decode(b, 0, b.length, new Uint8Array(b.length))).toThrow(/too long/);
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { ChunkedBodyDecoder } from "./chunked_body.ts";
import { HttpError } from "./errors.ts";

/** One byte per char, so any byte value goes out exactly. */
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const text = (b: Uint8Array) => String.fromCharCode(...b);

interface Decoded {
  body: string;
  done: boolean;
  /** Input bytes the decoder left alone (what follows the body). */
  rest: string;
}

/**
 * Feeds `wire` `step` bytes at a time the way a connection does: unconsumed bytes stay at the
 * front of the read buffer. `inPlace` decodes into the read buffer itself.
 */
function decodeIn(wire: string, step: number, inPlace: boolean): Decoded {
  const input = bytes(wire);
  const dec = new ChunkedBodyDecoder();
  const buf = new Uint8Array(input.length + 8);
  const out = inPlace ? buf : new Uint8Array(buf.length);
  let have = 0;
  let body = "";
  for (let fed = 0; fed < input.length && !dec.done;) {
    const n = Math.min(step, input.length - fed);
    buf.set(input.subarray(fed, fed + n), have);
    have += n;
    fed += n;
    // Decode from offset 3 into offset 1 so in-place output really lands before the input.
    buf.copyWithin(3, 0, have);
    const produced = dec.decode(buf, 3, 3 + have, out, 1);
    expect(produced).toBe(dec.produced);
    body += text(out.subarray(1, 1 + produced));
    buf.copyWithin(0, 3 + dec.consumed, 3 + have);
    have -= dec.consumed;
    if (dec.done) {
      return { body, done: true, rest: text(buf.subarray(0, have)) + text(input.subarray(fed)) };
    }
  }
  return { body, done: dec.done, rest: text(buf.subarray(0, have)) };
}

function rejects(wire: string): HttpError {
  for (const step of [1, wire.length]) {
    const dec = new ChunkedBodyDecoder({ maxTrailerSize: 64 });
    const input = bytes(wire);
    let caught: unknown = null;
    try {
      for (let p = 0; p < input.length && !dec.done; p += step) {
        dec.decode(input, p, Math.min(input.length, p + step), new Uint8Array(input.length));
      }
    } catch (err) {
      caught = err;
    }
    expect([wire, caught]).toEqual([wire, expect.any(HttpError)]);
    if (step === wire.length) {
      expect((caught as HttpError).status).toBe(400);
      expect((caught as HttpError).message).toMatch(/^Cannot decode chunked request body: /);
      return caught as HttpError;
    }
  }
  throw new Error("unreachable");
}

describe("ChunkedBodyDecoder", () => {
  const wire = '4;name="v;\\"x"\r\nWiki\r\n10\r\n0123456789abcdef\r\n' +
    "009;a=b ; c\r\n\x00\x01\x02\r\n\x0d\x0a\x80\xff\r\n" +
    "0;last\r\nTrailer-One: 1\r\nTrailer-Two:\t2 \r\n\r\nGET / HTTP/1.1\r\n";
  const body = "Wiki0123456789abcdef\x00\x01\x02\r\n\x0d\x0a\x80\xff";

  for (const step of [1, 2, 3, 7, 1000]) {
    for (const inPlace of [false, true]) {
      it(`decodes ${step} byte(s) at a time${inPlace ? " in place" : ""}, stopping at the body's end`, () => {
        expect(decodeIn(wire, step, inPlace)).toEqual({
          body,
          done: true,
          rest: "GET / HTTP/1.1\r\n",
        });
      });
    }
  }

  for (const step of [1, 5, 1000]) {
    it(`hands out the data without copying with next(), ${step} byte(s) at a time`, () => {
      const input = bytes(wire);
      const dec = new ChunkedBodyDecoder();
      const runs: string[] = [];
      let p = 0;
      let end = 0;
      while (!dec.done) {
        end = Math.min(input.length, end + step);
        while (p < end && !dec.done) {
          const n = dec.next(input, p, end);
          expect(dec.produced).toBe(n);
          if (n === 0) {
            p += dec.consumed;
            break;
          }
          // A view into the input: no copy was made.
          expect(dec.dataStart).toBeGreaterThanOrEqual(p);
          runs.push(text(input.subarray(dec.dataStart, dec.dataStart + n)));
          p += dec.consumed;
        }
      }
      expect(runs.join("")).toBe(body);
      expect(text(input.subarray(p))).toBe("GET / HTTP/1.1\r\n");
      if (step === 1000) expect(runs.length).toBe(3);
    });
  }

  it("accepts extensions in their RFC 9112 grammar, BWS around ; and =", () => {
    for (
      const size of [
        "3",
        "03",
        "0000000003",
        "3;a",
        "3;a;b",
        "3 ;a",
        "3\t; a",
        "3;a = b",
        "3;a=b;c=d",
        '3;a=""',
        '3;a="\\\\ \\" x" ;b',
        "3;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~",
      ]
    ) {
      expect([size, decodeIn(`${size}\r\nabc\r\n0\r\n\r\n`, 1, false).body]).toEqual([size, "abc"]);
    }
  });

  it("reports the data still due in the current chunk", () => {
    const dec = new ChunkedBodyDecoder();
    const b = bytes("a\r\n0123");
    dec.decode(b, 0, b.length, new Uint8Array(b.length));
    expect([dec.produced, dec.chunkRemaining, dec.done]).toEqual([4, 6, false]);
  });

  it("consumes nothing once done", () => {
    const dec = new ChunkedBodyDecoder();
    const b = bytes("0\r\n\r\n");
    dec.decode(b, 0, b.length, new Uint8Array(8));
    expect([dec.consumed, dec.done]).toEqual([5, true]);
    dec.decode(bytes("1\r\nx"), 0, 4, new Uint8Array(8));
    expect([dec.consumed, dec.produced, dec.done]).toEqual([0, 0, true]);
  });

  for (
    const [name, bad] of [
      ["an empty size", "\r\nabc\r\n0\r\n\r\n"],
      ["a 0x prefix", "0x3\r\nabc\r\n0\r\n\r\n"],
      ["a sign", "+3\r\nabc\r\n0\r\n\r\n"],
      ["a size over 12 hex digits", "1000000000000\r\n"],
      ["a size that only fits 64 bits", "FFFFFFFFFFFFFFFF\r\n"],
      ["trailing whitespace after the size", "3 \r\nabc\r\n0\r\n\r\n"],
      ["whitespace inside the size", "1 0\r\n"],
      ["a bare LF after the size", "3\nabc\r\n0\r\n\r\n"],
      ["a bare CR after the size", "3\rabc\r\n0\r\n\r\n"],
      ["a bare LF after the data", "3\r\nabc\n0\r\n\r\n"],
      ["no CRLF after the data", "3\r\nabcd\r\n0\r\n\r\n"],
      ["a bare CR after the data", "3\r\nabc\r0\r\n\r\n"],
      ["an empty extension name", "3;\r\nabc\r\n0\r\n\r\n"],
      ["an extension name with a space inside", "3;a b\r\nabc\r\n0\r\n\r\n"],
      ["an empty extension value", "3;a=\r\nabc\r\n0\r\n\r\n"],
      ["a separator in a token extension value", "3;a=b@c\r\nabc\r\n0\r\n\r\n"],
      ["an unterminated quoted value", '3;a="b\r\nabc\r\n0\r\n\r\n'],
      ["a NUL in a quoted value", '3;a="\x00"\r\nabc\r\n0\r\n\r\n'],
      ["a DEL after a backslash", '3;a="\\\x7f"\r\nabc\r\n0\r\n\r\n'],
      ["trailing whitespace after an extension", "3;a=b \r\nabc\r\n0\r\n\r\n"],
      ["trailing whitespace after a quoted value", '3;a="b" \r\nabc\r\n0\r\n\r\n'],
      ["whitespace after an extension name", "3;a \r\nabc\r\n0\r\n\r\n"],
      ["a chunk-size line over 4 KiB", `3;a=${"b".repeat(5000)}\r\n`],
      ["a bare LF ending the last chunk", "0\n\r\n"],
      ["obs-fold in the trailer", "0\r\nA: 1\r\n 2\r\n\r\n"],
      ["a space before a trailer colon", "0\r\nA : 1\r\n\r\n"],
      ["a trailer line without a colon", "0\r\nA\r\n\r\n"],
      ["an empty trailer name", "0\r\n: 1\r\n\r\n"],
      ["a NUL in a trailer value", "0\r\nA: \x00\r\n\r\n"],
      ["a bare LF in the trailer", "0\r\nA: 1\n\r\n"],
      ["a bare LF ending the trailer section", "0\r\nA: 1\r\n\n"],
      ["a CR without LF at the very end", "0\r\n\rX"],
      ["a trailer section over its limit", `0\r\nA: ${"x".repeat(100)}\r\n\r\n`],
    ]
  ) {
    it(`rejects ${name} with 400`, () => {
      rejects(bad);
    });
  }

  it("keeps failing once it has failed", () => {
    const dec = new ChunkedBodyDecoder();
    expect(() => dec.decode(bytes("x"), 0, 1, new Uint8Array(1))).toThrow(HttpError);
    expect(() => dec.decode(bytes("0\r\n\r\n"), 0, 5, new Uint8Array(5))).toThrow(
      /already failed/,
    );
    expect(dec.done).toBe(false);
  });
});

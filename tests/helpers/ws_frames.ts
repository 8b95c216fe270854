/**
 * Test helpers for WebSocket bytes on the wire: a frame encoder, a frame reader, the handshake's
 * accept key, and reading an HTTP head off a raw stream.
 *
 * @module
 */

import type { ByteStream } from "../../src/http1/types.ts";

const encoder = new TextEncoder();
/** RFC 6455 section 1.3. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** One frame to encode. */
export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** @default true */
  fin?: boolean;
  /** Mask with a random key (as a client must). @default false */
  mask?: boolean;
  /** Raw first-byte bits to add (RSV). */
  rsv?: number;
}

/** Encodes one frame, choosing the 7/16/64-bit length form by size. */
export function encodeFrame(spec: FrameSpec): Uint8Array {
  const payload = typeof spec.payload === "string"
    ? encoder.encode(spec.payload)
    : spec.payload ?? new Uint8Array(0);
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const mask = spec.mask ?? false;
  const head = 2 + extra + (mask ? 4 : 0);
  const out = new Uint8Array(head + len);
  out[0] = (spec.fin === false ? 0 : 0x80) | (spec.rsv ?? 0) | spec.opcode;
  out[1] = (mask ? 0x80 : 0) | (extra === 0 ? len : extra === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (extra === 2) view.setUint16(2, len);
  if (extra === 8) view.setBigUint64(2, BigInt(len));
  if (!mask) {
    out.set(payload, head);
    return out;
  }
  const key = crypto.getRandomValues(new Uint8Array(4));
  out.set(key, head - 4);
  for (let i = 0; i < len; i++) out[head + i] = payload[i] ^ key[i & 3];
  return out;
}

/** A close frame payload: code and reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = encoder.encode(reason);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** A decoded frame. */
export interface Frame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  /** Unmasked. */
  payload: Uint8Array;
}

/** Reads whole frames from a stream (unmasking masked ones); keeps what it over-read. */
export class FrameReader {
  #stream: ByteStream;
  /** Unread bytes are `#buf[#start, #end)`. */
  #buf: Uint8Array;
  #start = 0;
  #end: number;

  constructor(stream: ByteStream, leftover: Uint8Array = new Uint8Array(0)) {
    this.#stream = stream;
    this.#buf = new Uint8Array(Math.max(64 * 1024, leftover.length));
    this.#buf.set(leftover);
    this.#end = leftover.length;
  }

  /** Makes `need` unread bytes available from `#start`; false at EOF. */
  async #fill(need: number): Promise<boolean> {
    while (this.#end - this.#start < need) {
      if (this.#buf.length - this.#start < Math.max(need, 16 * 1024)) {
        // Move the unread part to the front of a buffer big enough for `need` (doubling).
        const size = Math.max(this.#buf.length, need * 2);
        if (size === this.#buf.length) {
          this.#buf.copyWithin(0, this.#start, this.#end);
        } else {
          const next = new Uint8Array(size);
          next.set(this.#buf.subarray(this.#start, this.#end));
          this.#buf = next;
        }
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#stream.read(this.#buf.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }

  /** The next frame, or null at EOF (a truncated frame counts as EOF). */
  async next(): Promise<Frame | null> {
    if (!await this.#fill(2)) return null;
    let buf = this.#buf;
    let at = this.#start;
    const b1 = buf[at + 1];
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (!await this.#fill(4)) return null;
      [buf, at] = [this.#buf, this.#start];
      len = (buf[at + 2] << 8) | buf[at + 3];
      head = 4;
    } else if (len === 127) {
      if (!await this.#fill(10)) return null;
      [buf, at] = [this.#buf, this.#start];
      len = Number(new DataView(buf.buffer, buf.byteOffset + at).getBigUint64(2));
      head = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) head += 4;
    if (!await this.#fill(head + len)) return null;
    [buf, at] = [this.#buf, this.#start];
    const payload = buf.slice(at + head, at + head + len);
    if (masked) {
      const key = buf.subarray(at + head - 4, at + head);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    }
    const first = buf[at];
    this.#start = at + head + len;
    return { fin: (first & 0x80) !== 0, opcode: first & 0x0f, masked, payload };
  }

  /** The next close frame's code and reason, skipping other frames; null at EOF. */
  async nextClose(): Promise<{ code: number; reason: string } | null> {
    for (let frame = await this.next(); frame !== null; frame = await this.next()) {
      if (frame.opcode !== 0x8) continue;
      const p = frame.payload;
      return {
        code: p.length >= 2 ? (p[0] << 8) | p[1] : 1005,
        reason: new TextDecoder().decode(p.subarray(2)),
      };
    }
    return null;
  }
}

/** Reads an HTTP head (through the blank line); returns it and the bytes read past it. */
export async function readHead(
  stream: ByteStream,
): Promise<{ head: string; rest: Uint8Array } | null> {
  const buf = new Uint8Array(16 * 1024);
  let filled = 0;
  while (filled < buf.length) {
    const n = await stream.read(buf.subarray(filled));
    if (n === null) return null;
    filled += n;
    for (let i = 3; i < filled; i++) {
      if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
        return {
          head: new TextDecoder().decode(buf.subarray(0, i + 1)),
          rest: buf.slice(i + 1, filled),
        };
      }
    }
  }
  return null;
}

/** Writes all of `bytes`. */
export async function writeAll(stream: ByteStream, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await stream.write(bytes.subarray(off));
}

/** Closes, ignoring "already closed". */
export function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch { /* already closed */ }
}

/** The Sec-WebSocket-Accept value for `key`. */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * A cursor over one direction of a WebSocket byte stream (RFC 6455 §5.2) that tracks frame
 * boundaries as the bytes pass, without copying or unmasking payloads: a header is parsed once
 * it is complete, its payload is skipped by arithmetic. It counts messages and payload bytes,
 * checks the masking rule of its direction, fragment order, control-frame rules and an optional
 * message size limit, and keeps the code and reason of a close frame (the only payload it reads).
 *
 * The caller owns the bytes: `feed` reports where it stopped, and an incomplete header at the
 * end of a chunk stays unconsumed so the caller can hold it back and present it again, together
 * with the bytes that complete it.
 *
 * @module
 */

/** Why a cursor stopped for good. */
export const FrameError = {
  None: 0,
  /** A frame that breaks RFC 6455 (masking, opcode, fragmentation, control-frame rules). */
  Protocol: 1,
  /** A data message whose fragments add up to more than `maxMessage`. */
  TooBig: 2,
} as const;
export type FrameError = typeof FrameError[keyof typeof FrameError];

/** How the frames of one direction must look. */
export interface FrameCursorOptions {
  /** true: every frame must be masked (client to server); false: none may be. */
  readonly masked: boolean;
  /** Largest data message in payload bytes (all fragments); 0 = no limit. @default 0 */
  readonly maxMessage?: number;
}

/** The longest control-frame payload (RFC 6455 §5.5). */
const MAX_CONTROL = 125;
/** 2^32, to build a 64-bit length from two 32-bit halves. */
const TWO_32 = 0x1_0000_0000;

const OP_CONTINUATION = 0x0;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PONG = 0xa;

/** Tracks frames in one direction; see the module comment. */
export class FrameCursor {
  /** Complete data messages seen (counted when the last fragment's payload has passed). */
  messages = 0;
  /** Payload bytes of data frames that have passed. */
  dataBytes = 0;
  /** Set once, when a frame breaks the rules; the cursor then stops where that frame starts. */
  error: FrameError = FrameError.None;
  /** What broke the rules, for logs. */
  errorDetail = "";
  /** A close frame has passed completely. */
  closeSeen = false;
  /** Its status code (1005 when it had none) and reason, once `closeSeen`. */
  closeCode = 0;
  closeReason = "";

  readonly #masked: boolean;
  readonly #maxMessage: number;
  /** Inside a frame's payload (the header has passed). */
  #inFrame = false;
  /** Payload bytes of the current frame still to pass. */
  #remaining = 0;
  #opcode = 0;
  #fin = false;
  /** A fragmented data message has started and not finished. */
  #inMessage = false;
  /** Payload bytes of the message so far, including the current frame. */
  #messageSize = 0;
  /** The current frame's payload is a close payload being kept (unmasked) here. */
  #closePayload: Uint8Array | null = null;
  #closeFilled = 0;
  #closeKey: Uint8Array | null = null;

  constructor(opts: FrameCursorOptions) {
    this.#masked = opts.masked;
    this.#maxMessage = opts.maxMessage ?? 0;
  }

  /** Between frames: nothing of a frame has passed that its end has not. */
  get atBoundary(): boolean {
    return !this.#inFrame;
  }

  /**
   * Consumes `buf[start, end)`. Returns where it stopped: `end`; the start of a header that is
   * not complete yet (present those bytes again with the ones that follow); with
   * `stopAfterFrame`, just past the first frame that ends; or, with `error` set, the start of
   * the frame that breaks the rules (nothing of it is consumed).
   */
  feed(buf: Uint8Array, start: number, end: number, stopAfterFrame = false): number {
    let pos = start;
    while (this.error === FrameError.None) {
      if (this.#inFrame) {
        const avail = end - pos;
        const remaining = this.#remaining;
        if (avail < remaining) {
          if (this.#closePayload !== null) this.#keepClose(buf, pos, end);
          if (this.#opcode < OP_CLOSE) this.dataBytes += avail;
          this.#remaining = remaining - avail;
          return end;
        }
        if (this.#closePayload !== null) this.#keepClose(buf, pos, pos + remaining);
        pos += remaining;
        this.#frameDone(remaining);
        if (stopAfterFrame) return pos;
      }
      if (pos === end) return pos;
      const next = this.#header(buf, pos, end);
      if (next < 0) return pos;
      pos = next;
    }
    return pos;
  }

  #frameDone(lastPart: number): void {
    this.#inFrame = false;
    this.#remaining = 0;
    const opcode = this.#opcode;
    if (opcode < OP_CLOSE) {
      this.dataBytes += lastPart;
      if (this.#fin) {
        this.messages++;
        this.#inMessage = false;
        this.#messageSize = 0;
      }
    } else if (opcode === OP_CLOSE) {
      this.#closeDone();
    }
  }

  /** Parses a header at `pos`; returns the payload start, or -1 when the header is not complete
   * (or, with `error` set, breaks the rules). */
  #header(buf: Uint8Array, pos: number, end: number): number {
    const avail = end - pos;
    if (avail < 2) return -1;
    const b0 = buf[pos];
    const b1 = buf[pos + 1];
    let length = b1 & 0x7f;
    let size = 2;
    if (length === 126) {
      if (avail < 4) return -1;
      length = (buf[pos + 2] << 8) | buf[pos + 3];
      size = 4;
    } else if (length === 127) {
      if (avail < 10) return -1;
      const high = ((buf[pos + 2] << 24) >>> 0) + (buf[pos + 3] << 16) + (buf[pos + 4] << 8) +
        buf[pos + 5];
      // Past 2^53 - 1 a length is no longer exact; no real frame comes near it.
      if (high > 0x1f_ffff) return this.#fail(FrameError.Protocol, "frame length over 2^53");
      length = high * TWO_32 + ((buf[pos + 6] << 24) >>> 0) + (buf[pos + 7] << 16) +
        (buf[pos + 8] << 8) + buf[pos + 9];
      size = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) {
      if (avail < size + 4) return -1;
      size += 4;
    }
    if (masked !== this.#masked) {
      return this.#fail(FrameError.Protocol, masked ? "masked frame" : "unmasked frame");
    }
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode >= OP_CLOSE) {
      if (opcode > OP_PONG) return this.#fail(FrameError.Protocol, `reserved opcode ${opcode}`);
      if (!fin) return this.#fail(FrameError.Protocol, "fragmented control frame");
      if (length > MAX_CONTROL) return this.#fail(FrameError.Protocol, "control frame over 125");
      if (opcode === OP_CLOSE) {
        this.#closePayload = new Uint8Array(length);
        this.#closeFilled = 0;
        this.#closeKey = masked ? buf.slice(pos + size - 4, pos + size) : null;
      }
    } else {
      if (opcode > OP_BINARY) return this.#fail(FrameError.Protocol, `reserved opcode ${opcode}`);
      if (opcode === OP_CONTINUATION) {
        if (!this.#inMessage) return this.#fail(FrameError.Protocol, "continuation out of order");
      } else if (this.#inMessage) {
        return this.#fail(FrameError.Protocol, "new message inside a fragmented one");
      }
      const total = (opcode === OP_CONTINUATION ? this.#messageSize : 0) + length;
      if (this.#maxMessage > 0 && total > this.#maxMessage) {
        return this.#fail(FrameError.TooBig, `message over ${this.#maxMessage} bytes`);
      }
      this.#messageSize = total;
      this.#inMessage = !fin;
    }
    this.#opcode = opcode;
    this.#fin = fin;
    this.#inFrame = true;
    this.#remaining = length;
    return pos + size;
  }

  #fail(error: FrameError, detail: string): number {
    this.error = error;
    this.errorDetail = detail;
    return -1;
  }

  #keepClose(buf: Uint8Array, from: number, to: number): void {
    const payload = this.#closePayload!;
    const key = this.#closeKey;
    for (let i = from; i < to; i++) {
      const at = this.#closeFilled++;
      payload[at] = key === null ? buf[i] : buf[i] ^ key[at & 3];
    }
  }

  #closeDone(): void {
    const payload = this.#closePayload!;
    this.#closePayload = null;
    this.#closeKey = null;
    if (this.closeSeen) return;
    this.closeSeen = true;
    if (payload.length < 2) {
      this.closeCode = 1005;
      return;
    }
    this.closeCode = (payload[0] << 8) | payload[1];
    this.closeReason = new TextDecoder().decode(payload.subarray(2));
  }
}

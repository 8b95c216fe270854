import { describe, it } from "node:test";
import { expect } from "expect";
import { FrameCursor, FrameError } from "./frame_cursor.ts";
import { closePayload, encodeFrame, type FrameSpec } from "../../tests/helpers/ws_frames.ts";

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function frames(specs: FrameSpec[]): Uint8Array {
  return concat(...specs.map(encodeFrame));
}

/**
 * Feeds `bytes` in reads of `sizes` (cycled) the way a pump does: an incomplete header stays
 * unconsumed and is presented again in front of the next read. Returns how many bytes were
 * passed on (the input up to where the cursor stopped).
 */
function pump(cursor: FrameCursor, bytes: Uint8Array, sizes: number[]): number {
  let passed = 0;
  let held = 0;
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length], bytes.length - at);
    // The held bytes sit right before the new ones, as in the pump's buffer.
    const start = at - held;
    at += n;
    const stop = cursor.feed(bytes, start, at);
    passed += stop - start;
    if (cursor.error !== FrameError.None) break;
    held = at - stop;
    if (held > 13) throw new Error(`held ${held} bytes: more than a header`);
  }
  return passed;
}

const MiB = 1024 * 1024;

describe("FrameCursor", () => {
  it("counts masked client messages and their payload bytes across every split of the headers", () => {
    const stream = frames([
      { opcode: 1, payload: "hello", mask: true },
      { opcode: 2, payload: new Uint8Array(300), mask: true }, // 16-bit length
      { opcode: 2, payload: new Uint8Array(70_000), mask: true }, // 64-bit length
      { opcode: 1, payload: "", mask: true },
    ]);
    for (const sizes of [[1], [2], [3], [7], [13], [1, 5, 2], [64 * 1024]]) {
      const cursor = new FrameCursor({ masked: true });
      expect(pump(cursor, stream, sizes)).toBe(stream.length);
      expect(cursor.error).toBe(FrameError.None);
      expect(cursor.messages).toBe(4);
      expect(cursor.dataBytes).toBe(5 + 300 + 70_000);
      expect(cursor.atBoundary).toBe(true);
    }
  });

  it("stops at an incomplete header and reports being inside a payload", () => {
    const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(1000) }); // 4-byte header
    const cursor = new FrameCursor({ masked: false });
    expect(cursor.feed(frame, 0, 3)).toBe(0); // header incomplete: nothing consumed
    expect(cursor.atBoundary).toBe(true);
    expect(cursor.feed(frame, 0, 500)).toBe(500);
    expect(cursor.atBoundary).toBe(false);
    expect(cursor.dataBytes).toBe(496);
    expect(cursor.messages).toBe(0);
    expect(cursor.feed(frame, 500, frame.length)).toBe(frame.length);
    expect(cursor.atBoundary).toBe(true);
    expect(cursor.messages).toBe(1);
  });

  it("reads 64-bit lengths beyond 32 bits without copying the payload", () => {
    const cursor = new FrameCursor({ masked: false });
    // Header of a 5 GiB binary frame; the payload is only ever skipped by arithmetic.
    const head = new Uint8Array([0x82, 127, 0, 0, 0, 1, 0x40, 0, 0, 0]);
    expect(cursor.feed(head, 0, head.length)).toBe(10);
    const chunk = new Uint8Array(MiB);
    for (let i = 0; i < 5 * 1024; i++) cursor.feed(chunk, 0, chunk.length);
    expect(cursor.dataBytes).toBe(5 * 1024 * MiB);
    expect(cursor.messages).toBe(1);
    expect(cursor.atBoundary).toBe(true);
  });

  it("counts a fragmented message once, with control frames between its fragments", () => {
    const stream = frames([
      { opcode: 1, payload: "one ", fin: false },
      { opcode: 9, payload: "ping" },
      { opcode: 0, payload: "two ", fin: false },
      { opcode: 10, payload: "" },
      { opcode: 0, payload: "three" },
      { opcode: 2, payload: "next" },
    ]);
    const cursor = new FrameCursor({ masked: false });
    expect(pump(cursor, stream, [3])).toBe(stream.length);
    expect(cursor.error).toBe(FrameError.None);
    expect(cursor.messages).toBe(2);
    expect(cursor.dataBytes).toBe(4 + 4 + 5 + 4);
  });

  it("stops after each frame when asked (where bws may insert its own frames)", () => {
    const a = encodeFrame({ opcode: 1, payload: "a".repeat(200), fin: false });
    const b = encodeFrame({ opcode: 0, payload: "b" });
    const stream = concat(a, b);
    const cursor = new FrameCursor({ masked: false });
    expect(cursor.feed(stream, 0, 100, true)).toBe(100);
    expect(cursor.feed(stream, 100, stream.length, true)).toBe(a.length);
    expect(cursor.atBoundary).toBe(true);
    expect(cursor.feed(stream, a.length, stream.length, true)).toBe(stream.length);
    expect(cursor.messages).toBe(1);
  });

  it("rejects an unmasked client frame and a masked server frame before consuming them", () => {
    const good = encodeFrame({ opcode: 1, payload: "ok", mask: true });
    const bad = encodeFrame({ opcode: 1, payload: "bad" });
    const client = new FrameCursor({ masked: true });
    const stream = concat(good, bad);
    expect(client.feed(stream, 0, stream.length)).toBe(good.length);
    expect(client.error).toBe(FrameError.Protocol);
    expect(client.errorDetail).toBe("unmasked frame");
    expect(client.messages).toBe(1);

    const server = new FrameCursor({ masked: false });
    const masked = encodeFrame({ opcode: 2, payload: "x", mask: true });
    expect(server.feed(masked, 0, masked.length)).toBe(0);
    expect(server.error).toBe(FrameError.Protocol);
    expect(server.errorDetail).toBe("masked frame");
  });

  it("rejects broken fragmentation, reserved opcodes and malformed control frames", () => {
    const cases: [FrameSpec[], string][] = [
      [[{ opcode: 0, payload: "x" }], "continuation out of order"],
      [[{ opcode: 1, payload: "x", fin: false }, { opcode: 2, payload: "y" }], "new message"],
      [[{ opcode: 3 }], "reserved opcode 3"],
      [[{ opcode: 0xb }], "reserved opcode 11"],
      [[{ opcode: 9, fin: false }], "fragmented control frame"],
      [[{ opcode: 9, payload: new Uint8Array(126) }], "control frame over 125"],
    ];
    for (const [specs, detail] of cases) {
      const cursor = new FrameCursor({ masked: false });
      const stream = frames(specs);
      const last = encodeFrame(specs[specs.length - 1]).length;
      expect(cursor.feed(stream, 0, stream.length)).toBe(stream.length - last);
      expect(cursor.error).toBe(FrameError.Protocol);
      expect(cursor.errorDetail).toContain(detail);
    }
  });

  it("enforces maxMessage on the sum of a message's fragments, not on single frames", () => {
    const ok = frames([
      { opcode: 2, payload: new Uint8Array(600), fin: false, mask: true },
      { opcode: 0, payload: new Uint8Array(400), mask: true }, // exactly 1000
      { opcode: 2, payload: new Uint8Array(1000), mask: true },
    ]);
    const cursor = new FrameCursor({ masked: true, maxMessage: 1000 });
    expect(pump(cursor, ok, [100])).toBe(ok.length);
    expect(cursor.error).toBe(FrameError.None);
    expect(cursor.messages).toBe(2);

    const first = encodeFrame({ opcode: 2, payload: new Uint8Array(600), fin: false, mask: true });
    const ping = encodeFrame({ opcode: 9, mask: true });
    const tooMuch = encodeFrame({ opcode: 0, payload: new Uint8Array(401), mask: true });
    const stream = concat(first, ping, tooMuch);
    const limited = new FrameCursor({ masked: true, maxMessage: 1000 });
    expect(pump(limited, stream, [64])).toBe(first.length + ping.length);
    expect(limited.error).toBe(FrameError.TooBig);
    expect(limited.atBoundary).toBe(true);

    const single = encodeFrame({ opcode: 1, payload: "x".repeat(1001), mask: true });
    const one = new FrameCursor({ masked: true, maxMessage: 1000 });
    expect(one.feed(single, 0, single.length)).toBe(0);
    expect(one.error).toBe(FrameError.TooBig);
  });

  it("keeps a close frame's code and reason, unmasked, even when split across reads", () => {
    const close = encodeFrame({ opcode: 8, payload: closePayload(4000, "bye ✓"), mask: true });
    const cursor = new FrameCursor({ masked: true });
    expect(pump(cursor, close, [1])).toBe(close.length);
    expect(cursor.closeSeen).toBe(true);
    expect(cursor.closeCode).toBe(4000);
    expect(cursor.closeReason).toBe("bye ✓");

    const empty = encodeFrame({ opcode: 8 });
    const bare = new FrameCursor({ masked: false });
    bare.feed(empty, 0, empty.length);
    expect(bare.closeSeen).toBe(true);
    expect(bare.closeCode).toBe(1005);
  });
});

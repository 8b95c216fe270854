import { describe, it } from "node:test";
import { expect } from "expect";
import { closeFrame, pingFrame, sendableCloseCode } from "./control_frames.ts";
import { FrameReader } from "../../tests/helpers/ws_frames.ts";

/** Decodes one frame through the test reader (which unmasks). */
function decode(bytes: Uint8Array) {
  let given = false;
  return new FrameReader({
    read: (p) => {
      if (given) return Promise.resolve(null);
      given = true;
      p.set(bytes);
      return Promise.resolve(bytes.length);
    },
    write: (p) => Promise.resolve(p.length),
    close: () => {},
  }).next();
}

describe("control frames", () => {
  it("builds an unmasked close frame for a client and a masked one for an upstream", async () => {
    const plain = await decode(closeFrame(1001, "going away", false));
    expect(plain).toMatchObject({ fin: true, opcode: 8, masked: false });
    expect([...plain!.payload.subarray(0, 2)]).toEqual([0x03, 0xe9]);
    expect(new TextDecoder().decode(plain!.payload.subarray(2))).toBe("going away");

    const a = closeFrame(4000, "bye", true);
    const b = closeFrame(4000, "bye", true);
    expect(a.subarray(2, 6)).not.toEqual(b.subarray(2, 6)); // a fresh key each time
    const masked = await decode(a);
    expect(masked).toMatchObject({ fin: true, opcode: 8, masked: true });
    expect([...masked!.payload]).toEqual([0x0f, 0xa0, 98, 121, 101]);
  });

  it("cuts a long reason at a character boundary to fit 125 bytes", async () => {
    const frame = await decode(closeFrame(1000, "é".repeat(100), false));
    const reason = frame!.payload.subarray(2);
    expect(reason.length).toBe(122); // 61 two-byte characters: 123 would split one
    expect(new TextDecoder("utf-8", { fatal: true }).decode(reason)).toBe("é".repeat(61));
  });

  it("never puts a code on the wire that only describes a close locally", async () => {
    for (const code of [1005, 1006, 1015, 999, 5000]) expect(sendableCloseCode(code)).toBe(false);
    for (const code of [1000, 1001, 1002, 1008, 1011, 3000, 4999]) {
      expect(sendableCloseCode(code)).toBe(true);
    }
    const toClient = await decode(closeFrame(1006, "", false));
    expect((toClient!.payload[0] << 8) | toClient!.payload[1]).toBe(1011);
    const toUpstream = await decode(closeFrame(1006, "", true));
    expect((toUpstream!.payload[0] << 8) | toUpstream!.payload[1]).toBe(1000);
  });

  it("builds an empty ping", async () => {
    expect(await decode(pingFrame())).toMatchObject({ opcode: 9, masked: false, fin: true });
    expect((await decode(pingFrame()))!.payload.length).toBe(0);
  });
});

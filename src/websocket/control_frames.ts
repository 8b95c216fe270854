/**
 * The control frames bws itself puts into a tunnelled WebSocket stream: close and ping, masked
 * (towards an upstream, bws being its client) or not (towards a client), RFC 6455 §5.5.
 *
 * @module
 */

/** Close and reason bytes fit one control frame: 125 bytes of payload minus the code. */
const MAX_REASON = 123;

/**
 * Whether `code` may be sent in a close frame (RFC 6455 §7.4): 1000-1003, 1007-1014 and
 * 3000-4999. 1004 is reserved, 1005/1006/1015 only ever describe a close locally.
 */
export function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** `reason` as UTF-8, cut at a character boundary to fit a close frame. */
function reasonBytes(reason: string): Uint8Array {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= MAX_REASON) return bytes;
  let end = MAX_REASON;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function frame(opcode: number, payload: Uint8Array, mask: boolean): Uint8Array {
  const head = mask ? 6 : 2;
  const out = new Uint8Array(head + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = (mask ? 0x80 : 0) | payload.length;
  if (!mask) {
    out.set(payload, 2);
    return out;
  }
  const key = crypto.getRandomValues(out.subarray(2, 6));
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ key[i & 3];
  return out;
}

/**
 * A close frame with `code` and `reason` (cut to fit); masked with a random key when `mask`.
 * A code that may not be sent becomes 1000 for a masked frame (bws as a client) and 1011
 * otherwise.
 */
export function closeFrame(code: number, reason: string, mask: boolean): Uint8Array {
  const wire = sendableCloseCode(code) ? code : mask ? 1000 : 1011;
  const text = reasonBytes(reason);
  const payload = new Uint8Array(2 + text.length);
  payload[0] = wire >> 8;
  payload[1] = wire & 0xff;
  payload.set(text, 2);
  return frame(0x8, payload, mask);
}

/** A ping frame without payload (bws only pings clients, so unmasked unless asked). */
export function pingFrame(mask = false): Uint8Array {
  return frame(0x9, new Uint8Array(0), mask);
}

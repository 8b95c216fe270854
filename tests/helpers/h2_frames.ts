/**
 * Raw HTTP/2 frames for tests that speak HTTP/2 byte by byte (hostile clients a real client
 * library would never be).
 *
 * @module
 */

const enc = new TextEncoder();

/** The client connection preface. */
export const PREFACE = enc.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** One frame: 9-byte header (length, type, flags, stream) and `payload`. */
export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >>> 16;
  out[1] = (payload.length >>> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, stream);
  out.set(payload, 9);
  return out;
}

/** HPACK: a literal field without indexing, new name (every length below 127). */
export function literal(name: string, value: string): number[] {
  return [0, name.length, ...enc.encode(name), value.length, ...enc.encode(value)];
}

/** HEADERS with END_STREAM and END_HEADERS for a GET of `path`, with more fields if given. */
export function get(
  stream: number,
  path: string,
  authority: string | null = "localhost",
  extra: [string, string][] = [],
): Uint8Array {
  const block = [
    ...literal(":method", "GET"),
    ...literal(":scheme", "http"),
    ...literal(":path", path),
    ...(authority === null ? [] : literal(":authority", authority)),
    ...extra.flatMap(([n, v]) => literal(n, v)),
  ];
  return frame(1, 0x5, stream, new Uint8Array(block));
}

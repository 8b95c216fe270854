/**
 * Joins two byte streams: what one sends, the other gets, each direction through one reused
 * buffer and written before the next read (backpressure). When either side ends or fails, both
 * are closed.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";

const BUFFER = 32 * 1024;

async function writeAll(to: ByteStream, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await to.write(off === 0 ? data : data.subarray(off));
}

async function pump(from: ByteStream, to: ByteStream): Promise<void> {
  const buf = new Uint8Array(BUFFER);
  while (true) {
    const n = await from.read(buf);
    if (n === null) return;
    await writeAll(to, buf.subarray(0, n));
  }
}

function closeQuietly(s: ByteStream): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}

/**
 * Relays `a` and `b` both ways until one ends; `aBuffered` (bytes already read from `a`) go to
 * `b` first. Resolves once both are closed; never rejects.
 */
export async function pipeStreams(
  a: ByteStream,
  aBuffered: Uint8Array,
  b: ByteStream,
): Promise<void> {
  const end = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  try {
    if (aBuffered.length > 0) await writeAll(b, aBuffered);
  } catch {
    end();
    return;
  }
  await Promise.race([pump(a, b), pump(b, a)]).catch(() => {});
  end();
}

/**
 * Joins two byte streams: what one sends, the other gets, each direction through a reused
 * buffer and written before the next read (backpressure). A direction reads into a 4 KiB buffer
 * while little arrives (a silent pipe holds only that) and into a 32 KiB one, from a small pool,
 * while reads fill their buffer. When either side ends or fails, both are closed; so are both
 * when the pipe has an idle limit and sits silent past it.
 *
 * @module
 */

import { deadlines, type Timed } from "./deadlines.ts";
import type { ByteStream } from "../http1/types.ts";

/** What a direction reads into while little arrives. */
const SMALL = 4 * 1024;
/** What it reads into while reads fill their buffer. */
const BIG = 32 * 1024;
const MAX_POOLED = 64;
const bigBuffers: Uint8Array[] = [];
/** Bytes of read buffers the pipes hold now. */
let held = 0;

/** Bytes of read buffers held by the pipes now (for tests and diagnostics). */
export function pipeBufferBytes(): number {
  return held;
}

function giveBack(big: Uint8Array): void {
  held -= BIG;
  if (bigBuffers.length < MAX_POOLED) bigBuffers.push(big);
}

async function writeAll(to: ByteStream, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await to.write(off === 0 ? data : data.subarray(off));
}

/** When a relayed connection may be closed for silence. */
export interface PipeIdle {
  /** Milliseconds without a byte either way after which both sides are closed (read at each
   * check; 0 = never). */
  readonly ms: () => number;
  /** Something is under way that may send nothing for a while (a request waiting for its
   * upstream): the pipe is not idle meanwhile. */
  readonly busy: () => boolean;
}

/** Closes a pipe that stayed silent, and not busy, for its idle limit (on the shared ticker). */
class IdleWatch implements Timed {
  deadline = 0;
  last = Date.now();
  readonly #idle: PipeIdle;
  readonly #end: () => void;

  constructor(idle: PipeIdle, end: () => void) {
    this.#idle = idle;
    this.#end = end;
    this.expire(this.last);
  }

  expire(now: number): void {
    const ms = this.#idle.ms();
    if (ms > 0 && now - this.last >= ms && !this.#idle.busy()) {
      this.#end();
      return;
    }
    // Silent but busy, or no limit now (a reload may set one): look again later.
    this.deadline = ms > 0 && now - this.last < ms ? this.last + ms : now + Math.max(ms, 1000);
  }
}

async function pump(from: ByteStream, to: ByteStream, watch: IdleWatch | null): Promise<void> {
  const small = new Uint8Array(SMALL);
  held += SMALL;
  let big: Uint8Array | null = null;
  let buf: Uint8Array = small;
  try {
    while (true) {
      const n = await from.read(buf);
      if (n === null) return;
      if (watch !== null) watch.last = Date.now();
      await writeAll(to, buf.subarray(0, n));
      // The bytes are written: nothing holds a view into `buf` any more.
      if (n === buf.length) {
        if (big === null) {
          big = bigBuffers.pop() ?? new Uint8Array(BIG);
          held += BIG;
        }
        buf = big;
      } else if (big !== null && n < SMALL) {
        giveBack(big);
        big = null;
        buf = small;
      }
    }
  } finally {
    // Runs once this direction's last read or write has settled.
    held -= SMALL;
    if (big !== null) giveBack(big);
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
 * Relays `a` and `b` both ways until one ends (or, with `idle`, until the pipe stays silent past
 * its limit); `aBuffered` (bytes already read from `a`) go to `b` first. Resolves once both are
 * closed; never rejects.
 */
export async function pipeStreams(
  a: ByteStream,
  aBuffered: Uint8Array,
  b: ByteStream,
  idle?: PipeIdle,
): Promise<void> {
  const end = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  const watch = idle === undefined ? null : new IdleWatch(idle, end);
  if (watch !== null) deadlines.add(watch);
  let pumps: Promise<void>[] = [];
  try {
    if (aBuffered.length > 0) await writeAll(b, aBuffered);
    pumps = [pump(a, b, watch), pump(b, a, watch)];
    await Promise.race(pumps);
  } catch {
    // either side failed (or was closed for silence)
  } finally {
    if (watch !== null) deadlines.delete(watch);
    end();
  }
  // The other direction ends with the close: its buffers go back before this resolves.
  await Promise.allSettled(pumps);
}

/**
 * Joins two byte streams: what one sends, the other gets, each direction through one reused
 * buffer and written before the next read (backpressure). When either side ends or fails, both
 * are closed; so are both when the pipe has an idle limit and sits silent past it.
 *
 * @module
 */

import { deadlines, type Timed } from "./deadlines.ts";
import type { ByteStream } from "../http1/types.ts";

const BUFFER = 32 * 1024;

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
  const buf = new Uint8Array(BUFFER);
  while (true) {
    const n = await from.read(buf);
    if (n === null) return;
    if (watch !== null) watch.last = Date.now();
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
  try {
    if (aBuffered.length > 0) await writeAll(b, aBuffered);
    await Promise.race([pump(a, b, watch), pump(b, a, watch)]);
  } catch {
    // either side failed (or was closed for silence)
  } finally {
    if (watch !== null) deadlines.delete(watch);
    end();
  }
}

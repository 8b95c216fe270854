/**
 * Joins two byte streams: what one sends, the other gets, each direction through a reused
 * buffer and written before the next read (backpressure). A direction reads into a 4 KiB buffer
 * while little arrives (a silent pipe holds only that) and into a 32 KiB one, from a small pool,
 * while reads fill their buffer. The first side (the client) is not read while a write to it is
 * in progress. When either side ends or fails, both are closed; so are both when the pipe sits
 * silent past its idle limit, or a write waits past its send limit.
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

/** When a relayed connection is closed before either side ends it. */
export interface PipeLimits {
  /** Milliseconds without a byte either way after which both sides are closed (read at each
   * check; 0 = never). */
  readonly idleMs: () => number;
  /** Something is under way that may send nothing for a while (a request waiting for its
   * upstream): the pipe is not idle meanwhile. */
  readonly busy: () => boolean;
  /**
   * Milliseconds a write may wait for its side to take bytes before both sides are closed (read
   * at each check; 0 or absent = never): SPEC 9's `send`. A client that stops reading stalls the
   * relay's writes to it, and whatever waits behind them (an HTTP/2 connection's answers, held
   * by the server that made them) would wait for ever: the idle limit does not see it, since
   * that server has requests in flight.
   */
  readonly sendMs?: () => number;
}

/** Closes a pipe that stayed silent (and not busy) past its idle limit, or whose write to
 * either side made no progress for its send limit (on the shared ticker). */
class PipeWatch implements Timed {
  deadline = 0;
  /** When either direction last read something. */
  last = Date.now();
  /** Per direction, since when its pending write has made no progress (0 = not writing). */
  readonly #stalledSince = [0, 0];
  readonly #limits: PipeLimits;
  readonly #end: () => void;

  constructor(limits: PipeLimits, end: () => void) {
    this.#limits = limits;
    this.#end = end;
    this.expire(this.last);
  }

  /** Direction `d` starts a write, or its write made progress: the send limit counts from now. */
  writing(d: number, now: number): void {
    this.#stalledSince[d] = now;
    const send = this.#limits.sendMs?.() ?? 0;
    if (send > 0 && (this.deadline === 0 || this.deadline > now + send)) {
      this.deadline = now + send;
    }
  }

  /** Direction `d` wrote all it had. */
  wrote(d: number): void {
    this.#stalledSince[d] = 0;
  }

  expire(now: number): void {
    const send = this.#limits.sendMs?.() ?? 0;
    let next = 0;
    if (send > 0) {
      for (const since of this.#stalledSince) {
        if (since === 0) continue;
        if (now - since >= send) {
          this.#end();
          return;
        }
        next = next === 0 ? since + send : Math.min(next, since + send);
      }
    }
    const ms = this.#limits.idleMs();
    if (ms > 0 && now - this.last >= ms && !this.#limits.busy()) {
      this.#end();
      return;
    }
    // Silent but busy, or no limit now (a reload may set one): look again later.
    const idleNext = ms > 0 && now - this.last < ms ? this.last + ms : now + Math.max(ms, 1000);
    this.deadline = next === 0 ? idleNext : Math.min(next, idleNext);
  }
}

/** Writes all of `data` to `to`; `watch` (direction `d`) times each wait for progress. */
async function writeAll(
  to: ByteStream,
  data: Uint8Array,
  watch: PipeWatch | null,
  d: number,
): Promise<void> {
  let off = 0;
  while (off < data.length) {
    watch?.writing(d, Date.now());
    off += await to.write(off === 0 ? data : data.subarray(off));
  }
  watch?.wrote(d);
}

/** The write in progress to one side, if any. */
interface PendingWrite {
  write: Promise<void> | null;
}

/**
 * Copies `from` to `to` until `from` ends. Its writes are published in `writes` (when given);
 * it reads nothing while `waitFor` has a write in progress.
 */
async function pump(
  from: ByteStream,
  to: ByteStream,
  watch: PipeWatch | null,
  d: number,
  writes: PendingWrite | null,
  waitFor: PendingWrite | null,
): Promise<void> {
  const small = new Uint8Array(SMALL);
  held += SMALL;
  let big: Uint8Array | null = null;
  let buf: Uint8Array = small;
  try {
    while (true) {
      if (waitFor !== null && waitFor.write !== null) await waitFor.write.catch(() => {});
      const n = await from.read(buf);
      if (n === null) return;
      if (watch !== null) watch.last = Date.now();
      const write = writeAll(to, buf.subarray(0, n), watch, d);
      if (writes !== null) writes.write = write;
      await write;
      if (writes !== null) writes.write = null;
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
 * Relays `a` and `b` both ways until one ends (or, with `limits`, until the pipe stays silent or
 * a write stalls past its limit); `aBuffered` (bytes already read from `a`) go to `b` first.
 * Resolves once both are closed; never rejects.
 */
export async function pipeStreams(
  a: ByteStream,
  aBuffered: Uint8Array,
  b: ByteStream,
  limits?: PipeLimits,
): Promise<void> {
  const end = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  const watch = limits === undefined ? null : new PipeWatch(limits, end);
  if (watch !== null) deadlines.add(watch);
  let pumps: Promise<void>[] = [];
  try {
    if (aBuffered.length > 0) await writeAll(b, aBuffered, watch, 0);
    // `a` (the client) is not read while a write to it is in progress: a client that does not
    // take what it is sent gets nothing more taken from it (an HTTP/2 client that never reads
    // would otherwise keep the server answering, and holding, request after request).
    const toA: PendingWrite = { write: null };
    pumps = [pump(a, b, watch, 0, null, toA), pump(b, a, watch, 1, toA, null)];
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

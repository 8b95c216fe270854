/**
 * Buffered log output. Lines are collected in memory and written in batches (after
 * `flushMs`, or at once when `maxBatchBytes` are pending), so the access log costs no write
 * syscall per request. All operations on the underlying file run one after another through a
 * single promise chain, so a flush never races a reopen or close.
 *
 * @module
 */

import { dirname } from "node:path";
import { errorText } from "./error_text.ts";

/** Where formatted lines go. Every `write` gets exactly one complete line. */
export interface LogSink {
  /** Queues one line (including its `\n`); never blocks. */
  write(line: string): void;
  /** Resolves when everything queued so far has been written. */
  flush(): Promise<void>;
  /** Closes and re-opens the output path (file outputs only; others just flush). */
  reopen(): Promise<void>;
  /** Flushes and closes; later writes are ignored. */
  close(): Promise<void>;
}

/** Options of {@link BufferedSink}. */
export interface BufferedSinkOptions {
  /** Milliseconds a line may wait before the batch is written. @default 100 */
  readonly flushMs?: number;
  /** Pending bytes that trigger an immediate write. @default 65536 */
  readonly maxBatchBytes?: number;
  /** Pending bytes beyond which new lines are dropped (and counted). @default 16777216 */
  readonly maxPendingBytes?: number;
}

/** The byte destination behind a {@link BufferedSink}. */
export interface SinkTarget {
  write(bytes: Uint8Array): Promise<void>;
  reopen(): Promise<void>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}

/** Lines are joined and encoded a few at a time: one `encodeInto` per line cost ~0.2 µs of
 * WebIDL checks each, and a handful of recent lines held as one string is gone before the next
 * scavenge (a whole batch held as strings was not: see {@link BufferedSink}). */
const TEXT_LINES = 16;
/** …or once they make this many characters. */
const TEXT_CHARS = 16 * 1024;

/** Capacity of a batch buffer when it is first made. */
const INITIAL_BATCH = 64 * 1024;
/** A batch buffer that grew past this is not kept for the next batch. */
const KEEP_BATCH = 1024 * 1024;

/**
 * A batching {@link LogSink} over a {@link SinkTarget}. Lines are encoded into a byte buffer as
 * they arrive: a queued line holds no string (an access line is built from pieces of the
 * request; held as strings until the batch is written, they kept ~1.5 KB per request alive
 * across minor GCs and made every scavenge copy them). Two buffers take turns: one fills while
 * the other is being written.
 */
export class BufferedSink implements LogSink {
  readonly #target: SinkTarget;
  readonly #flushMs: number;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  #buf: Uint8Array = new Uint8Array(INITIAL_BATCH);
  #len = 0;
  /** Lines not encoded yet, joined (see {@link TEXT_LINES}). */
  #text = "";
  #textLines = 0;
  /** The other buffer, back from its write. */
  #spare: Uint8Array | null = null;
  #dropped = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #queued = false;
  #closed = false;
  #tail: Promise<void> = Promise.resolve();
  #failing = false;

  constructor(target: SinkTarget, opts: BufferedSinkOptions = {}) {
    this.#target = target;
    this.#flushMs = opts.flushMs ?? 100;
    this.#maxBatch = opts.maxBatchBytes ?? 65536;
    this.#maxPending = opts.maxPendingBytes ?? 16 * 1024 * 1024;
  }

  write(line: string): void {
    if (this.#closed) return;
    if (this.#len >= this.#maxPending) {
      this.#dropped++;
      return;
    }
    this.#text += line;
    if (++this.#textLines >= TEXT_LINES || this.#text.length >= TEXT_CHARS) this.#encodeText();
    if (this.#len + this.#text.length >= this.#maxBatch) {
      this.#clearTimer();
      this.#scheduleWrite();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onTimer, this.#flushMs);
    }
  }

  flush(): Promise<void> {
    this.#clearTimer();
    this.#scheduleWrite();
    return this.#tail;
  }

  reopen(): Promise<void> {
    this.#clearTimer();
    return this.#enqueue(async () => {
      await this.#writePending();
      await this.#target.reopen();
    });
  }

  close(): Promise<void> {
    if (this.#closed) return this.#tail;
    this.#closed = true;
    this.#clearTimer();
    return this.#enqueue(async () => {
      await this.#writePending();
      await this.#target.close();
    });
  }

  /** Encodes the lines joined since the last call into the batch buffer. */
  #encodeText(): void {
    const text = this.#text;
    if (text === "") return;
    this.#text = "";
    this.#textLines = 0;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const need = this.#len + text.length * 3;
    if (need > this.#buf.length) this.#grow(need);
    const r = encoder.encodeInto(text, this.#len === 0 ? this.#buf : this.#buf.subarray(this.#len));
    this.#len += r.written;
  }

  #grow(need: number): void {
    const bigger = new Uint8Array(Math.max(need, this.#buf.length * 2));
    bigger.set(this.#buf.subarray(0, this.#len));
    this.#buf = bigger;
  }

  #onTimer = () => {
    this.#timer = undefined;
    this.#scheduleWrite();
  };

  #clearTimer() {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #scheduleWrite() {
    this.#encodeText();
    if (this.#queued || (this.#len === 0 && this.#dropped === 0)) return;
    this.#queued = true;
    this.#enqueue(() => {
      this.#queued = false;
      return this.#writePending();
    });
  }

  #enqueue(op: () => Promise<void>): Promise<void> {
    const p = this.#tail.then(op);
    // Keep the chain alive after a failure; the caller of this op still sees the rejection.
    this.#tail = p.catch(() => {});
    return p;
  }

  async #writePending(): Promise<void> {
    while (true) {
      // Lines written while the last batch was being written go out in this pass too.
      this.#encodeText();
      if (this.#len === 0 && this.#dropped === 0) break;
      const buf = this.#buf;
      const len = this.#len;
      this.#buf = this.#spare ?? new Uint8Array(INITIAL_BATCH);
      this.#spare = null;
      this.#len = 0;
      const dropped = this.#dropped;
      this.#dropped = 0;
      try {
        if (len > 0) await this.#target.write(buf.subarray(0, len));
        if (dropped > 0) {
          const warning = `${
            new Date().toISOString()
          } WARN log output too slow: dropped=${dropped} lines\n`;
          await this.#target.write(encoder.encode(warning));
        }
        this.#failing = false;
      } catch (err) {
        // Report once per failing stretch, on stderr: the log itself cannot carry it.
        if (!this.#failing) {
          this.#failing = true;
          console.error(`Cannot write log output: ${errorText(err)}`);
        }
      }
      if (buf.length <= KEEP_BATCH) this.#spare = buf;
    }
  }
}

/** A target writing to stdout or stderr (never closed by the logger). */
export function stdioTarget(which: "stdout" | "stderr"): SinkTarget {
  const stream = which === "stdout" ? Deno.stdout : Deno.stderr;
  return {
    write: (bytes) => writeAll(stream, bytes),
    reopen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

function openLogFileSync(path: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { append: true, create: true });
  } catch (err) {
    throw new Error(`Cannot open log file "${path}": ${describeOpenError(path, err)}`);
  }
}

async function openLogFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { append: true, create: true });
  } catch (err) {
    throw new Error(`Cannot reopen log file "${path}": ${describeOpenError(path, err)}`);
  }
}

function describeOpenError(path: string, err: unknown): string {
  if (err instanceof Deno.errors.NotFound) {
    return `directory "${dirname(path)}" does not exist`;
  }
  return errorText(err);
}

/**
 * A target appending to the file at `path` (created if missing; its directory must exist).
 * `reopen()` opens `path` anew before closing the old handle, so a failed reopen keeps logging
 * into the old (possibly renamed) file.
 *
 * @throws Error "Cannot open log file ..." when the file cannot be opened.
 */
export function fileTarget(path: string): SinkTarget {
  let file = openLogFileSync(path);
  let closed = false;
  return {
    write: (bytes) => writeAll(file, bytes),
    async reopen() {
      if (closed) return;
      const next = await openLogFile(path);
      const old = file;
      file = next;
      old.close();
    },
    close() {
      if (!closed) {
        closed = true;
        file.close();
      }
      return Promise.resolve();
    },
  };
}

/** An in-memory {@link LogSink} for tests: `lines` holds every line written, unbuffered. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  reopen(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A worker thread's logger: records are batched and relayed to the supervisor, which writes
 * them with its own logger. One thread writes the output, so lines from several workers never
 * interleave mid-line (a pipe splits writes above 4 KiB), and a log file is reopened (SIGUSR1)
 * in one place.
 *
 * Access lines are formatted here, in the worker, and relayed as one string per batch: relayed as
 * entries, each was cloned into the supervisor and formatted there, ~2-4 µs of the supervisor's
 * one thread per request, which then limited what the workers together could serve.
 *
 * @module
 */

import type { LoggingConfig, LogLevel } from "../config/types.ts";
import { LEVEL_RANK } from "../log/levels.ts";
import type { AccessEntry, LogFields, Logger } from "../log/types.ts";
import { formatAccessJson, formatAccessText } from "../log/format.ts";
import type { LogRecord } from "./protocol.ts";

/** Records held before a batch goes out at once. */
const BATCH = 512;
/** Milliseconds a record may wait for its batch. */
const FLUSH_MS = 50;

/** Relays log records through `send` (one call per batch). */
export class RelayLogger implements Logger {
  readonly #send: (records: LogRecord[]) => void;
  readonly #threshold: number;
  readonly #access: boolean;
  readonly #worker: number | undefined;
  /** Formats access lines here; null: entries are relayed. */
  readonly #accessLine: ((entry: AccessEntry) => string) | null;
  #batch: LogRecord[] = [];
  /** Access lines formatted since the last record of the batch. */
  #lines = "";
  /** Records in the batch, counting each access line. */
  #pending = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * @param level overrides `cfg.level` (`-v`)
   * @param worker added to every message line as the `worker` field
   * @param formatAccess format access lines in `cfg.format` and relay them as text (the
   *   supervisor writes them with a logger built from the same `[logging]`)
   */
  constructor(
    cfg: LoggingConfig,
    send: (records: LogRecord[]) => void,
    level?: LogLevel,
    worker?: number,
    formatAccess = false,
  ) {
    this.#send = send;
    this.#worker = worker;
    this.#accessLine = !formatAccess
      ? null
      : cfg.format === "json"
      ? formatAccessJson
      : formatAccessText;
    this.#threshold = LEVEL_RANK[level ?? cfg.level] ?? LEVEL_RANK.info;
    this.#access = cfg.accessLog;
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.#threshold;
  }

  trace(msg: string, fields?: LogFields): void {
    this.#line("trace", msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.#line("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#line("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#line("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#line("error", msg, fields);
  }

  access(entry: AccessEntry): void {
    if (!this.#access || this.#closed) return;
    if (this.#accessLine === null) {
      this.#push({ kind: "access", entry });
      return;
    }
    this.#lines += this.#accessLine(entry);
    this.#counted();
  }

  /** The supervisor reopens the output. */
  reopen(): Promise<void> {
    return Promise.resolve();
  }

  /** Sends what is pending; later records are dropped. */
  close(): Promise<void> {
    this.flush();
    this.#closed = true;
    return Promise.resolve();
  }

  /** Sends the pending batch now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#takeLines();
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#pending = 0;
    this.#send(batch);
  }

  /** Access lines formatted so far become a record of the batch (keeping the records' order). */
  #takeLines(): void {
    if (this.#lines === "") return;
    this.#batch.push({ kind: "access_lines", text: this.#lines });
    this.#lines = "";
  }

  #line(level: Exclude<LogLevel, never>, msg: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < this.#threshold) return;
    const all = fields ? plain(fields) : {};
    this.#push({
      kind: "line",
      level,
      msg,
      fields: this.#worker === undefined ? all : { ...all, worker: this.#worker },
    });
  }

  #push(record: LogRecord): void {
    if (this.#closed) return;
    this.#takeLines();
    this.#batch.push(record);
    this.#counted();
  }

  /** One more record is pending: the batch goes when full, or after {@link FLUSH_MS}. */
  #counted(): void {
    if (++this.#pending >= BATCH) this.flush();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
  }
}

/** Fields as data that survives a structured clone (errors and other objects as text). */
function plain(fields: LogFields): LogFields {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v === null || typeof v !== "object" || Array.isArray(v) ? v : String(v);
  }
  return out;
}

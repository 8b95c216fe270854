/**
 * `createLogger`: the {@link Logger} implementation behind every module of bws.
 *
 * @module
 */

import type { LoggingConfig, LogLevel } from "../config/types.ts";
import type { AccessEntry, LogFields, Logger } from "./types.ts";
import { LEVEL_RANK } from "./levels.ts";
import { formatAccessJson, formatAccessText, formatJson, formatText } from "./format.ts";
import { BufferedSink, fileTarget, type LogSink, stdioTarget } from "./sink.ts";

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** `-v/--verbose`: lowers the threshold to `debug` when the config asks for less. @default false */
  readonly verbose?: boolean;
  /** Write here instead of the configured output (tests, embedding). @default undefined */
  readonly sink?: LogSink;
  /** Milliseconds a line may wait in the buffer before it is written. @default 100 */
  readonly flushMs?: number;
}

/**
 * Creates a logger for `cfg`. Output is buffered: lines reach stdout/stderr/the file within
 * `flushMs` (or at once when 64 KiB are pending), and on `close()`.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info", format: "text", accessLog: true,
 *   output: "stdout", filePath: "" });
 * log.info("listening", { port: 8080 });
 * await log.close();
 * ```
 * @throws Error `Cannot open log file "<path>": ...` when output = "file" and the file cannot be
 *   opened (for example its directory does not exist).
 */
export function createLogger(cfg: LoggingConfig, opts: CreateLoggerOptions = {}): Logger {
  let threshold = LEVEL_RANK[cfg.level] ?? LEVEL_RANK.info;
  if (opts.verbose && threshold > LEVEL_RANK.debug) threshold = LEVEL_RANK.debug;
  const sink = opts.sink ?? new BufferedSink(openTarget(cfg), { flushMs: opts.flushMs });
  const json = cfg.format === "json";
  const line = json ? formatJson : formatText;
  const accessLine = json ? formatAccessJson : formatAccessText;
  const accessOn = cfg.accessLog;

  const emit = (rank: number, msg: string, fields?: LogFields) => {
    if (rank >= threshold) sink.write(line(Date.now(), rank, msg, fields));
  };

  return {
    enabled: (level: LogLevel) => LEVEL_RANK[level] >= threshold,
    trace: (msg, fields) => emit(0, msg, fields),
    debug: (msg, fields) => emit(1, msg, fields),
    info: (msg, fields) => emit(2, msg, fields),
    warn: (msg, fields) => emit(3, msg, fields),
    error: (msg, fields) => emit(4, msg, fields),
    access(entry: AccessEntry) {
      if (accessOn) sink.write(accessLine(entry));
    },
    accessLines(text: string) {
      if (accessOn) sink.write(text);
    },
    // Never rejects (SIGUSR1 handlers fire and forget): on failure the old handle stays in use
    // and the error is logged there and on stderr.
    reopen: () =>
      sink.reopen().catch((err: Error) => {
        console.error(err.message);
        emit(LEVEL_RANK.error, "Cannot reopen the log file, still writing to the old one", {
          error: err.message,
        });
      }),
    close: () => sink.close(),
  };
}

function openTarget(cfg: LoggingConfig) {
  if (cfg.output === "file") {
    if (!cfg.filePath) throw new Error(`Cannot open log file "": logging.file_path is empty`);
    return fileTarget(cfg.filePath);
  }
  return stdioTarget(cfg.output === "stderr" ? "stderr" : "stdout");
}

/**
 * Test helper: a logger that keeps everything in memory.
 *
 * @module
 */

import type { AccessEntry, LogFields, Logger } from "../../src/log/types.ts";

/** One message as logged. */
export interface LogRecord {
  level: string;
  msg: string;
  fields?: LogFields;
}

/** A logger that keeps access entries and messages: as records and as one line of text each. */
export function memoryLogger(): Logger & {
  entries: AccessEntry[];
  records: LogRecord[];
  lines: string[];
} {
  const entries: AccessEntry[] = [];
  const records: LogRecord[] = [];
  const lines: string[] = [];
  const log = (level: string) => (msg: string, fields?: LogFields) => {
    records.push({ level, msg, fields });
    lines.push(`${level} ${msg} ${fields ? JSON.stringify(fields) : ""}`);
  };
  return {
    entries,
    records,
    lines,
    enabled: () => true,
    trace: log("trace"),
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    access: (e) => void entries.push(e),
    reopen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

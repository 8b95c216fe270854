/**
 * Logging: the {@link Logger} contract, `createLogger`, formats and sinks.
 *
 * @module
 */

export type { AccessEntry, LogFields, Logger, LogLevel } from "./types.ts";
export { createLogger, type CreateLoggerOptions } from "./create_logger.ts";
export {
  BufferedSink,
  type BufferedSinkOptions,
  fileTarget,
  type LogSink,
  MemorySink,
  type SinkTarget,
  stdioTarget,
} from "./sink.ts";
export { formatAccessJson, formatAccessText, formatJson, formatText } from "./format.ts";

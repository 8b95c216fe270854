/**
 * The logger of a running server: built from `[logging]` (with the `-v` override) unless the
 * embedder passed its own, and replaced on a reload that changes `[logging]`.
 *
 * @module
 */

import type { Config, LogLevel } from "../config/types.ts";
import { createLogger } from "../log/create_logger.ts";
import type { Logger } from "../log/types.ts";

export interface LogOutputOptions {
  /** Overrides `[logging] level`. */
  readonly logLevel?: LogLevel;
  /** Use this logger for good: `[logging]` and its reloads are then ignored. */
  readonly logger?: Logger;
}

export class LogOutput {
  /** The logger every part of the server writes to now (read it at each use). */
  current: Logger;
  readonly #opts: LogOutputOptions;

  constructor(config: Config, opts: LogOutputOptions) {
    this.#opts = opts;
    this.current = this.#build(config);
  }

  #build(config: Config): Logger {
    const level = this.#opts.logLevel;
    return this.#opts.logger ??
      createLogger(level ? { ...config.logging, level } : config.logging);
  }

  /** The logger `next` wants: a new one when `[logging]` changed and the logger is ours. */
  forReload(next: Config, changed: boolean): Logger {
    return changed && this.#opts.logger === undefined ? this.#build(next) : this.current;
  }

  /** Makes `next` current; the old one is closed a second later (lines still being written). */
  switchTo(next: Logger): void {
    if (next === this.current) return;
    const old = this.current;
    this.current = next;
    setTimeout(() => void old.close(), 1000);
  }

  /** Closes a logger {@link forReload} built for a reload that then failed. */
  discard(built: Logger): void {
    if (built !== this.current) void built.close();
  }

  /** Closes the logger at shutdown, unless the embedder owns it. */
  async close(): Promise<void> {
    if (this.#opts.logger === undefined) await this.current.close();
  }
}

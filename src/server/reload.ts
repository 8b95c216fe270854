/**
 * The pieces of a reload that do not depend on how the plan is served: reading the file again,
 * seeing which sections changed, running reloads one at a time, and turning a failure into
 * issues and one log line.
 *
 * @module
 */

import { loadConfigFile } from "../config/load.ts";
import { sameConfigValue } from "../config/same_value.ts";
import type { Config, ConfigIssue } from "../config/types.ts";
import { ConfigError } from "../config/types.ts";
import { errorText } from "../log/error_text.ts";
import { preflightConfig } from "./preflight.ts";

/**
 * Reads and validates the config file again. What a start would trip over (unreadable
 * certificates, a log directory that is gone) is reported with key and line, before anything
 * is swapped.
 *
 * @throws ConfigError with every issue found
 */
export async function loadForReload(source: string): Promise<Config> {
  const next = await loadConfigFile(source);
  const problems = await preflightConfig(next);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return next;
}

/** The sections of `next` that differ from the running config and need their own handling. */
export function changedSections(next: Config, running: Config) {
  return {
    /** A new logger is built (unless the embedder passed one). */
    logging: !sameConfigValue(next.logging, running.logging),
    /** The management API restarts on the new address and key. */
    management: !sameConfigValue(next.management, running.management),
  };
}

/** The issues a failed reload reports: a ConfigError's own, else the error's text. */
export function reloadIssues(err: unknown): readonly ConfigIssue[] {
  return err instanceof ConfigError ? err.issues : [{ path: "", message: errorText(err) }];
}

/** The issues on one log line: `line 3: sites[0].port: must be …; …`. */
export function issuesLogText(issues: readonly ConfigIssue[]): string {
  return issues.map((e) =>
    `${e.line ? `line ${e.line}: ` : ""}${e.path ? e.path + ": " : ""}${e.message}`
  ).join("; ");
}

/**
 * Runs reloads one at a time (SIGHUP, `--watch` and the API may fire together): each reload must
 * see the listeners the previous one left, or two of them start the same port.
 */
export class ReloadQueue {
  #last: Promise<unknown> = Promise.resolve();

  run<T>(reload: () => Promise<T>): Promise<T> {
    const run = this.#last.then(reload);
    this.#last = run.catch(() => {});
    return run;
  }
}

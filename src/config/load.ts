/**
 * Loading a config: TOML text or a raw object → validated, defaults-applied, deeply frozen
 * `Config`, or a `ConfigError` listing every issue with its key path and line.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { type EnvLookup, processEnv, type Substituted, substituteEnv } from "./env_substitution.ts";
import { readErrorPages } from "./error_page_files.ts";
import { deepFreeze } from "./freeze.ts";
import { findPosition, type PositionMap, scanKeyPositions } from "./positions.ts";
import { CONFIG_SCHEMA } from "./schema.ts";
import { checkSemantics } from "./semantic.ts";
import { type Config, ConfigError, type ConfigIssue } from "./types.ts";
import { buildFromSchema, type RawIssue } from "./validate.ts";
import { errorText } from "../log/error_text.ts";

/** A loaded config plus the warnings found (things that may be intended, like a missing dir). */
export interface LoadResult {
  readonly config: Config;
  readonly warnings: readonly ConfigIssue[];
}

/** Options for parsing config text. */
export interface ParseOptions {
  /** Shown in messages; also becomes `config.source` (resolved). @default "" */
  readonly file?: string;
  /** Directory that relative paths resolve against. */
  readonly baseDir: string;
  /** Where `${NAME}` in values is looked up. @default the process environment */
  readonly env?: EnvLookup;
}

/** Parses and validates TOML text; throws `ConfigError` listing every issue. */
export function parseConfigText(text: string, opts: ParseOptions): Config {
  return parseConfigTextWithWarnings(text, opts).config;
}

/** Like `parseConfigText`, also returning warnings. */
export function parseConfigTextWithWarnings(text: string, opts: ParseOptions): LoadResult {
  const file = opts.file ?? "";
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigError(file, [{
        path: "",
        message: `Cannot parse TOML: ${first}`,
        line: e.line,
        column: e.column,
      }]);
    }
    throw e;
  }
  return build(raw, file, opts.baseDir, scanKeyPositions(text), opts.env ?? processEnv);
}

/** Reads, parses and validates a config file; relative paths resolve against its directory. */
export async function loadConfigFile(path: string): Promise<Config> {
  return (await loadConfigFileWithWarnings(path)).config;
}

/** Like `loadConfigFile`, also returning warnings. */
export async function loadConfigFileWithWarnings(path: string): Promise<LoadResult> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch (e) {
    const detail = e instanceof Deno.errors.NotFound ? "no such file" : errorText(e);
    throw new ConfigError(abs, [{
      path: "",
      message: `Cannot read config file "${abs}": ${detail}`,
    }]);
  }
  return parseConfigTextWithWarnings(text, { file: abs, baseDir: dirname(abs) });
}

/**
 * Validates a raw TOML-shaped object (snake_case keys, as in the file), for users of the module
 * API. Relative paths resolve against `baseDir`. Values are taken as they are: `${NAME}` is
 * substituted only in config text (`parseConfigText`, `loadConfigFile`).
 *
 * @param opts.baseDir @default Deno.cwd()
 */
export function configFromObject(raw: unknown, opts: { baseDir?: string } = {}): Config {
  return configFromObjectWithWarnings(raw, opts).config;
}

/** Like `configFromObject`, also returning warnings. */
export function configFromObjectWithWarnings(
  raw: unknown,
  opts: { baseDir?: string } = {},
): LoadResult {
  return build(raw, "", resolve(opts.baseDir ?? Deno.cwd()), new Map(), null);
}

function build(
  raw: unknown,
  file: string,
  baseDir: string,
  positions: PositionMap,
  env: EnvLookup | null,
): LoadResult {
  const vars: Substituted = env
    ? substituteEnv(raw, env)
    : { value: raw, issues: [], substituted: new Set() };
  const built = buildFromSchema(vars.value, CONFIG_SCHEMA, {
    baseDir,
    substituted: vars.substituted,
  });
  const { value } = built;
  // A value that could not be substituted is reported once, for the variable, not again for
  // what the unsubstituted text fails.
  const failed = new Set(vars.issues.map((i) => i.path));
  const issues = [...vars.issues, ...built.issues.filter((i) => !failed.has(i.path))];
  value.source = file ? resolve(file) : "";
  const config = value as unknown as Config;
  const semantic = checkSemantics(config, issues);
  issues.push(
    ...readErrorPages(value.sites as Record<string, unknown>[], (p) => isBroken(issues, p)),
  );
  const errors = locate(
    [...issues, ...semantic.errors.filter((i) => !failed.has(i.path))],
    positions,
  );
  if (errors.length > 0) throw new ConfigError(file, errors);
  return {
    config: deepFreeze(config),
    warnings: deepFreeze(locate(semantic.warnings, positions)),
  };
}

/** Whether `issues` has one at `path` or below it. */
function isBroken(issues: readonly RawIssue[], path: string): boolean {
  return issues.some((i) =>
    i.path === path || i.path.startsWith(path + ".") || i.path.startsWith(path + "[")
  );
}

/** Attaches line/column to each issue and orders them as they appear in the file. */
function locate(issues: readonly RawIssue[], positions: PositionMap): ConfigIssue[] {
  const located = issues.map((i, n) => {
    const pos = findPosition(positions, i.path);
    const issue: ConfigIssue = pos ? { ...i, line: pos.line, column: pos.column } : { ...i };
    return { issue, n };
  });
  located.sort((a, b) =>
    (a.issue.line ?? 0) - (b.issue.line ?? 0) || (a.issue.column ?? 0) - (b.issue.column ?? 0) ||
    a.n - b.n
  );
  return located.map((l) => l.issue);
}

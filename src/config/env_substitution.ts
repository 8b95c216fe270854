/**
 * Environment variables in config values (docs/behaviour.md "Environment variables in the
 * config"): every string value of the parsed
 * file may use `${NAME}`, `${NAME:-default}` and `$$`. Done on the parsed document, before
 * validation, so a variable can never inject TOML and every value is checked after substitution.
 *
 * Any other `$` is an error (not a literal): `api_key = "$API_KEY"` would otherwise become the
 * literal text `$API_KEY`, a guessable key, without a word.
 *
 * @module
 */

import { childPath, indexPath } from "./key_path.ts";
import type { RawIssue } from "./validate.ts";

/** Looks up one environment variable; undefined when it is not set. */
export type EnvLookup = (name: string) => string | undefined;

/** The result of substituting a whole document. */
export interface Substituted {
  /** A copy of the document with every string value substituted (the input is not changed). */
  readonly value: unknown;
  /** One issue per string value that could not be substituted. */
  readonly issues: RawIssue[];
  /**
   * Key paths of the values that used at least one variable: a number or boolean key may take
   * such a string (`port = "${PORT:-8080}"`).
   */
  readonly substituted: ReadonlySet<string>;
}

/** The process environment; a missing `--allow-env` becomes an error naming the variable. */
export const processEnv: EnvLookup = (name) => {
  try {
    return Deno.env.get(name);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new EnvError(
        `Cannot read environment variable ${name}: bws runs without --allow-env`,
      );
    }
    throw e;
  }
};

/** A substitution that cannot be done; the message says why. */
class EnvError extends Error {}

/** Substitutes every string value of a parsed TOML document (tables, arrays, nested). */
export function substituteEnv(doc: unknown, env: EnvLookup = processEnv): Substituted {
  const issues: RawIssue[] = [];
  const substituted = new Set<string>();
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === "string") {
      if (!v.includes("$")) return v;
      try {
        const r = substituteString(v, env);
        if (r.used) substituted.add(path);
        return r.value;
      } catch (e) {
        if (!(e instanceof EnvError)) throw e;
        issues.push({ path, message: e.message });
        return v;
      }
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, indexPath(path, i)));
    if (typeof v === "object" && v !== null && !(v instanceof Date)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, childPath(path, k));
      return out;
    }
    return v;
  };
  const value = walk(doc, "");
  return { value, issues, substituted };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Substitutes one string. Throws `EnvError` for a missing variable without a default, an
 * unclosed `${` or a bad name; a `$` that starts neither `${` nor `$$` stays as it is. Messages never echo
 * the value itself (it may be a secret); they give the position of the `$`.
 */
export function substituteString(s: string, env: EnvLookup): { value: string; used: boolean } {
  let out = "";
  let used = false;
  let i = 0;
  for (;;) {
    const at = s.indexOf("$", i);
    if (at < 0) return { value: out + s.slice(i), used };
    out += s.slice(i, at);
    const next = s[at + 1];
    if (next === "$") {
      out += "$";
      i = at + 2;
      continue;
    }
    if (next !== "{") {
      // A "$" that starts neither form is itself: bcrypt hashes ("$2y$10$…", as htpasswd
      // writes them) are full of them.
      out += "$";
      i = at + 1;
      continue;
    }
    const close = s.indexOf("}", at + 2);
    if (close < 0) {
      throw new EnvError(`Cannot use "\${" at character ${at + 1} of the value: no closing "}"`);
    }
    const inner = s.slice(at + 2, close);
    const sep = inner.indexOf(":-");
    const name = sep < 0 ? inner : inner.slice(0, sep);
    if (!NAME.test(name)) {
      throw new EnvError(
        `Cannot use "\${${sep < 0 ? inner : name + ":-…"}}": expected \${NAME} or ` +
          "${NAME:-default}, NAME made of letters, digits and _ (not starting with a digit)",
      );
    }
    const found = env(name);
    if (sep < 0) {
      if (found === undefined) {
        throw new EnvError(
          `Cannot substitute \${${name}}: environment variable ${name} is not set ` +
            `(set it, or give a default: \${${name}:-default})`,
        );
      }
      out += found;
    } else {
      // As in the shell, `:-` also replaces a variable that is set but empty.
      out += found ? found : literalDefault(inner.slice(sep + 2), name);
    }
    used = true;
    i = close + 1;
  }
}

/** A default is literal text; `$$` in it is a `$`, any other `$` (nesting) is an error. */
function literalDefault(text: string, name: string): string {
  if (!text.includes("$")) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "$") out += text[i];
    else if (text[i + 1] === "$") {
      out += "$";
      i++;
    } else {
      throw new EnvError(
        `Cannot use "$" in the default of \${${name}:-…}: write "$$" for a literal "$" ` +
          "(defaults cannot refer to other variables)",
      );
    }
  }
  return out;
}

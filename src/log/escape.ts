/**
 * Escaping that keeps every log record on exactly one line, whatever a client sends
 * (log injection): control characters, DEL, C1 controls and the Unicode line/paragraph
 * separators become visible escapes.
 *
 * @module
 */

// Characters that must never appear raw in a text log value.
// deno-lint-ignore no-control-regex
const UNSAFE_IN_QUOTES = /["\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// A bare (unquoted) text value may only use these; anything else is quoted.
const BARE = /^[A-Za-z0-9._:/@+=,\-\[\]%?&~*#!$;'()]+$/;

function escapeChar(ch: string): string {
  switch (ch) {
    case '"':
      return '\\"';
    case "\\":
      return "\\\\";
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default: {
      const code = ch.charCodeAt(0);
      return code < 0x100
        ? "\\x" + code.toString(16).padStart(2, "0")
        : "\\u" + code.toString(16).padStart(4, "0");
    }
  }
}

/**
 * Escapes `s` for use between double quotes in a text log line: `"` → `\"`, `\` → `\\`,
 * newline → `\n`, other control characters → `\xHH` / `\uHHHH`.
 */
export function escapeQuoted(s: string): string {
  UNSAFE_IN_QUOTES.lastIndex = 0;
  return UNSAFE_IN_QUOTES.test(s) ? s.replace(UNSAFE_IN_QUOTES, escapeChar) : s;
}

/** A text-format value: bare when it is a simple token, else double-quoted and escaped. */
export function textValue(s: string): string {
  if (s === "") return '""';
  return BARE.test(s) ? s : '"' + escapeQuoted(s) + '"';
}

// JSON.stringify leaves U+2028 / U+2029 raw (valid JSON), but some line-oriented tools split on
// them; escape them too so a JSON record is one line for every reader.
const JSON_LINE_SEPARATORS = /[\u2028\u2029]/g;

/** `JSON.stringify` for a string, plus escapes for U+2028 / U+2029. */
export function jsonString(s: string): string {
  const out = JSON.stringify(s);
  JSON_LINE_SEPARATORS.lastIndex = 0;
  return JSON_LINE_SEPARATORS.test(out)
    ? out.replace(JSON_LINE_SEPARATORS, (c) => (c === "\u2028" ? "\\u2028" : "\\u2029"))
    : out;
}

/**
 * Maps key paths of a TOML document to where they are written, because smol-toml reports
 * positions only for syntax errors. The text is assumed to be valid TOML (it was parsed first);
 * the scanner follows `[table]` and `[[array]]` headers (with running indexes), dotted and
 * quoted keys, inline tables and arrays, and skips the contents of strings.
 *
 * @module
 */

import { childPath, indexPath, parentPath } from "./key_path.ts";

/** 1-based line and column. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Key path → position of the key (or the header that opens the table). */
export type PositionMap = ReadonlyMap<string, Position>;

/** Scans `text` and returns the position of every key path it defines. Never throws. */
export function scanKeyPositions(text: string): PositionMap {
  const out = new Map<string, Position>();
  try {
    new Scanner(text, out).document();
  } catch {
    // Best effort: keep what was found before the scanner got lost.
  }
  return out;
}

/**
 * The position of `path`, or of its nearest enclosing key/table that has one, or undefined.
 */
export function findPosition(map: PositionMap, path: string): Position | undefined {
  for (let p: string | null = path; p !== null; p = parentPath(p)) {
    const pos = map.get(p);
    if (pos) return pos;
  }
  return undefined;
}

class Scanner {
  #i = 0;
  readonly #text: string;
  readonly #out: Map<string, Position>;
  readonly #lineStarts: number[] = [0];
  /** Array-of-tables path → number of elements seen so far. */
  readonly #arrays = new Map<string, number>();

  constructor(text: string, out: Map<string, Position>) {
    this.#text = text;
    this.#out = out;
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") this.#lineStarts.push(i + 1);
  }

  document(): void {
    let table = "";
    const t = this.#text;
    while (this.#i < t.length) {
      this.#skipBlank(true);
      if (this.#i >= t.length) break;
      if (t.startsWith("[[", this.#i)) {
        const at = this.#i;
        this.#i += 2;
        const keys = this.#key();
        this.#expect("]]");
        let parent = "";
        for (let k = 0; k < keys.length - 1; k++) {
          parent = this.#resolve(childPath(parent, keys[k]));
        }
        const arr = childPath(parent, keys[keys.length - 1]);
        const n = this.#arrays.get(arr) ?? 0;
        this.#arrays.set(arr, n + 1);
        table = indexPath(arr, n);
        this.#record(arr, at);
        this.#record(table, at);
      } else if (t[this.#i] === "[") {
        const at = this.#i;
        this.#i += 1;
        const keys = this.#key();
        this.#expect("]");
        let path = "";
        for (let k = 0; k < keys.length; k++) {
          path = childPath(path, keys[k]);
          if (k < keys.length - 1) path = this.#resolve(path);
        }
        table = path;
        this.#record(table, at);
      } else {
        this.#keyValue(table);
      }
      this.#skipBlank(false);
    }
  }

  /** An array-of-tables path refers to its latest element inside headers and dotted keys. */
  #resolve(path: string): string {
    const n = this.#arrays.get(path);
    return n === undefined ? path : indexPath(path, n - 1);
  }

  #record(path: string, index: number): void {
    if (this.#out.has(path)) return;
    let lo = 0;
    let hi = this.#lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#lineStarts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    this.#out.set(path, { line: lo + 1, column: index - this.#lineStarts[lo] + 1 });
  }

  #keyValue(table: string): void {
    const at = this.#i;
    const keys = this.#key();
    let path = table;
    for (const k of keys) {
      path = childPath(path, k);
      this.#record(path, at);
    }
    this.#skipSpaces();
    this.#expect("=");
    this.#skipSpaces();
    this.#value(path);
  }

  #value(path: string): void {
    const t = this.#text;
    const c = t[this.#i];
    if (c === '"' || c === "'") {
      this.#string();
    } else if (c === "[") {
      this.#i++;
      let n = 0;
      for (;;) {
        this.#skipBlank(true);
        if (t[this.#i] === "]") break;
        this.#record(indexPath(path, n), this.#i);
        this.#value(indexPath(path, n));
        n++;
        this.#skipBlank(true);
        if (t[this.#i] === ",") this.#i++;
        else if (t[this.#i] !== "]") throw new SyntaxError("array");
      }
      this.#i++;
    } else if (c === "{") {
      this.#i++;
      for (;;) {
        this.#skipBlank(true);
        if (t[this.#i] === "}") break;
        this.#keyValue(path);
        this.#skipBlank(true);
        if (t[this.#i] === ",") this.#i++;
        else if (t[this.#i] !== "}") throw new SyntaxError("inline table");
      }
      this.#i++;
    } else {
      while (this.#i < t.length && !/[\s,\]}#]/.test(t[this.#i])) this.#i++;
      // dates may contain one space ("1979-05-27 07:32:00"); harmless to stop early here
    }
  }

  /** Reads a (possibly dotted) key and returns its parts. */
  #key(): string[] {
    const parts: string[] = [];
    const t = this.#text;
    for (;;) {
      this.#skipSpaces();
      const c = t[this.#i];
      if (c === '"' || c === "'") {
        parts.push(this.#string());
      } else {
        const start = this.#i;
        while (this.#i < t.length && /[A-Za-z0-9_-]/.test(t[this.#i])) this.#i++;
        if (this.#i === start) throw new SyntaxError("key");
        parts.push(t.slice(start, this.#i));
      }
      this.#skipSpaces();
      if (t[this.#i] !== ".") return parts;
      this.#i++;
    }
  }

  /** Reads any TOML string form and returns its (approximately) decoded content. */
  #string(): string {
    const t = this.#text;
    const q = t[this.#i];
    if (t.startsWith(q.repeat(3), this.#i)) {
      this.#i += 3;
      const start = this.#i;
      for (;;) {
        if (this.#i >= t.length) throw new SyntaxError("string");
        if (q === '"' && t[this.#i] === "\\") {
          this.#i += 2;
          continue;
        }
        if (t.startsWith(q.repeat(3), this.#i)) {
          // up to two quotes may directly precede the closing delimiter
          let end = this.#i + 3;
          while (t[end] === q && end - this.#i < 5) end++;
          const content = t.slice(start, end - 3);
          this.#i = end;
          return content;
        }
        this.#i++;
      }
    }
    this.#i++;
    const start = this.#i;
    while (this.#i < t.length && t[this.#i] !== q && t[this.#i] !== "\n") {
      if (q === '"' && t[this.#i] === "\\") this.#i++;
      this.#i++;
    }
    const raw = t.slice(start, this.#i);
    this.#i++;
    if (q === "'" || !raw.includes("\\")) return raw;
    try {
      return JSON.parse(`"${raw}"`);
    } catch {
      return raw;
    }
  }

  #expect(s: string): void {
    this.#skipSpaces();
    if (!this.#text.startsWith(s, this.#i)) throw new SyntaxError(`expected ${s}`);
    this.#i += s.length;
  }

  #skipSpaces(): void {
    while (this.#text[this.#i] === " " || this.#text[this.#i] === "\t") this.#i++;
  }

  /** Skips spaces and comments, and newlines too when `newlines`. */
  #skipBlank(newlines: boolean): void {
    const t = this.#text;
    while (this.#i < t.length) {
      const c = t[this.#i];
      if (c === " " || c === "\t" || c === "\r" || (newlines && c === "\n")) this.#i++;
      else if (c === "#") { while (this.#i < t.length && t[this.#i] !== "\n") this.#i++; }
      else break;
    }
  }
}

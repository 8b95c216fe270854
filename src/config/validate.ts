/**
 * Walks a raw TOML-shaped object along the schema: reports unknown keys (with suggestions),
 * wrong types and failed checks, applies defaults and builds the camelCase config object.
 * Invalid values are replaced by their defaults so that later checks can still run.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { childPath, indexPath } from "./key_path.ts";
import type { BuildContext, Field, Node, TableNode } from "./schema_nodes.ts";
import { suggestKey } from "./suggest.ts";
import { describe, parseDuration, parseSize } from "./units.ts";

/** An issue before positions are attached. */
export interface RawIssue {
  readonly path: string;
  readonly message: string;
}

export interface BuildOptions {
  /** Directory that relative paths resolve against. */
  readonly baseDir: string;
  /**
   * Key paths whose string value came from `${NAME}` substitution: a number, duration or boolean
   * key accepts such a string when it reads as one (`port = "${PORT:-8080}"`).
   */
  readonly substituted?: ReadonlySet<string>;
}

/** Builds the config object described by `schema` from `raw`, collecting every issue. */
export function buildFromSchema(
  raw: unknown,
  schema: TableNode,
  opts: BuildOptions,
): { value: Record<string, unknown>; issues: RawIssue[] } {
  const issues: RawIssue[] = [];
  const ctx: { root: Record<string, unknown> } = { root: {} };
  const b = new Builder(issues, ctx, opts.baseDir, schema, opts.substituted ?? new Set());
  const value = b.table(raw, schema, "", true);
  return { value, issues };
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `strip_prefix` → `stripPrefix`. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

class Builder {
  constructor(
    private readonly issues: RawIssue[],
    private readonly ctx: BuildContext,
    private readonly baseDir: string,
    private readonly schema: TableNode,
    private readonly substituted: ReadonlySet<string>,
  ) {}

  #issue(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  table(raw: unknown, node: TableNode, path: string, isRoot = false): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (isRoot) (this.ctx as { root: Record<string, unknown> }).root = out;
    let src: Record<string, unknown> = {};
    if (raw !== undefined) {
      if (isTable(raw)) src = raw;
      else this.#issue(path, `expected a table, got ${describe(raw)}`);
    }
    const aliases = node.aliases ?? {};
    const known = [...Object.keys(node.fields), ...Object.keys(aliases)];
    for (const key of Object.keys(src)) {
      if (key in node.fields) continue;
      const target = aliases[key];
      if (target !== undefined) {
        if (target in src) {
          this.#issue(
            childPath(path, key),
            `\`${key}\` and \`${target}\` mean the same; set only one`,
          );
        }
        continue;
      }
      const hint = suggestKey(key, known);
      const where = path ? ` in ${path}` : "";
      const home = hint ? undefined : keyHomes(this.schema).get(key);
      this.#issue(
        childPath(path, key),
        `unknown key \`${key}\`${where}` +
          (hint ? `; did you mean \`${hint}\`?` : home ? `; it belongs in ${home}` : ""),
      );
    }
    for (const [key, field] of Object.entries(node.fields)) {
      const aliasKey = Object.keys(aliases).find((a) => aliases[a] === key && a in src);
      const useAlias = !(key in src) && aliasKey !== undefined;
      const k = useAlias ? aliasKey : key;
      const value = this.node(src[k], field, childPath(path, k), out);
      const prop = (field.prop ?? camelCase(key)).split(".");
      let target = out;
      for (const part of prop.slice(0, -1)) {
        target = (target[part] ??= {}) as Record<string, unknown>;
      }
      target[prop[prop.length - 1]] = value;
    }
    return out;
  }

  node(v: unknown, node: Field | Node, path: string, self: Record<string, unknown>): unknown {
    switch (node.type) {
      case "table":
        if (v === undefined && node.required) this.#issue(path, "missing required table");
        if (v === undefined && node.optional) return null;
        return this.table(v, node, path);
      case "table[]": {
        if (v === undefined) {
          if (node.required) this.#issue(path, "missing required array of tables");
          return [];
        }
        if (!Array.isArray(v)) {
          this.#issue(path, `expected an array of tables ([[...]]), got ${describe(v)}`);
          return [];
        }
        return v.map((item, i) => this.table(item, node.item, indexPath(path, i)));
      }
    }
    if (v === undefined) {
      if (node.required) {
        this.#issue(path, `missing required key \`${path.slice(path.lastIndexOf(".") + 1)}\``);
        return placeholder(node.type);
      }
      return this.#default(node, self);
    }
    const checked = this.#scalar(v, node, path);
    if (checked === undefined) {
      return node.required ? placeholder(node.type) : this.#default(node, self);
    }
    return checked;
  }

  #default(node: Exclude<Node, TableNode | { type: "table[]" }>, self: Record<string, unknown>) {
    const d = node.default as unknown;
    const value = typeof d === "function" ? d(self, this.ctx) : d;
    return node.type === "string" && node.path ? this.#path(value as string) : value;
  }

  /** Converts and checks a present scalar value; undefined after reporting an issue. */
  #scalar(v: unknown, node: Exclude<Node, TableNode | { type: "table[]" }>, path: string): unknown {
    if (typeof v === "string" && this.substituted.has(path)) v = fromSubstitution(v, node.type);
    const fail = (message: string) => {
      this.#issue(path, message);
      return undefined;
    };
    const check = (value: any): unknown => {
      const msg = (node.check as ((x: unknown) => string | undefined) | undefined)?.(value);
      return msg ? fail(msg) : value;
    };
    switch (node.type) {
      case "string": {
        if (typeof v !== "string") return fail(`expected a string, got ${describe(v)}`);
        const s = node.lowerCase ? v.toLowerCase() : v;
        if (node.oneOf && !node.oneOf.includes(s)) {
          return fail(`Cannot use "${v}": expected one of ${node.oneOf.join(", ")}`);
        }
        if (check(s) === undefined) return undefined;
        return node.path ? this.#path(s) : s;
      }
      case "bool":
        return typeof v === "boolean" ? v : fail(`expected true or false, got ${describe(v)}`);
      case "int": {
        if (typeof v !== "number" || !Number.isInteger(v)) {
          return fail(`expected an integer, got ${describe(v)}`);
        }
        const { min, max } = node;
        if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
          const range = max === undefined ? `≥ ${min}` : `${min ?? "-∞"}..${max}`;
          return fail(`Cannot use ${v}: must be ${range}`);
        }
        return check(v);
      }
      case "number": {
        if (typeof v !== "number" || !Number.isFinite(v)) {
          return fail(`expected a number, got ${describe(v)}`);
        }
        const { min, max } = node;
        if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
          const range = max === undefined ? `≥ ${min}` : `${min ?? "-∞"}..${max}`;
          return fail(`Cannot use ${v}: must be ${range}`);
        }
        return check(v);
      }
      case "count": {
        if (typeof v === "string" && node.keywords.includes(v.toLowerCase())) {
          return check(v.toLowerCase());
        }
        if (typeof v === "number" && Number.isInteger(v) && v >= node.min && v <= node.max) {
          return check(v);
        }
        const words = node.keywords.map((k) => `"${k}"`).join(" or ");
        const shown = typeof v === "string" || typeof v === "number"
          ? JSON.stringify(v)
          : describe(v);
        return fail(
          `Cannot use ${shown}: expected an integer from ${node.min} to ${node.max}` +
            (words ? `, or ${words}` : ""),
        );
      }
      case "duration": {
        const r = parseDuration(v);
        return r.ok ? check(r.value) : fail(r.message);
      }
      case "size": {
        const r = parseSize(v);
        return r.ok ? check(r.value) : fail(r.message);
      }
      case "string[]": {
        if (!Array.isArray(v)) return fail(`expected an array of strings, got ${describe(v)}`);
        const out: string[] = [];
        let ok = true;
        v.forEach((item, i) => {
          const p = indexPath(path, i);
          if (typeof item !== "string") {
            this.#issue(p, `expected a string, got ${describe(item)}`);
            ok = false;
            return;
          }
          const s = node.lowerCase ? item.toLowerCase() : item;
          const msg = node.each?.(s);
          if (msg) {
            this.#issue(p, msg);
            ok = false;
          }
          out.push(s);
        });
        return ok ? check(out) : undefined;
      }
      case "headers": {
        if (!isTable(v)) {
          return fail(`expected a table of header names to values, got ${describe(v)}`);
        }
        const out: Record<string, string> = {};
        let ok = true;
        for (const [name, value] of Object.entries(v)) {
          const p = childPath(path, name);
          if (!HEADER_NAME.test(name)) {
            this.#issue(p, `Cannot use header name "${name}": not a valid HTTP header name`);
            ok = false;
          } else if (typeof value !== "string") {
            this.#issue(p, `expected a string header value, got ${describe(value)}`);
            ok = false;
          } else if (/[\r\n\0]/.test(value)) {
            this.#issue(p, `Cannot use header value for "${name}": contains CR, LF or NUL`);
            ok = false;
          } else out[name] = value;
        }
        return ok ? check(out) : undefined;
      }
      case "string-map": {
        if (!isTable(v)) return fail(`expected a table of keys to strings, got ${describe(v)}`);
        const out: Record<string, string> = {};
        let ok = true;
        for (const [key, value] of Object.entries(v)) {
          const p = childPath(path, key);
          const keyProblem = node.key?.(key);
          const msg = keyProblem ??
            (typeof value !== "string"
              ? `expected a string, got ${describe(value)}`
              : node.path && value === ""
              ? `expected a non-empty string, got ${describe(value)}`
              : node.entry?.(key, value));
          if (msg) {
            this.#issue(p, msg);
            ok = false;
          } else out[key] = node.path ? this.#path(value as string) : value as string;
        }
        return ok ? check(out) : undefined;
      }
      case "header-remove": {
        const names: string[] = [];
        let ok = true;
        const add = (name: string, p: string) => {
          if (HEADER_NAME.test(name)) names.push(name);
          else {
            this.#issue(p, `Cannot use header name "${name}": not a valid HTTP header name`);
            ok = false;
          }
        };
        if (Array.isArray(v)) {
          v.forEach((item, i) => {
            if (typeof item === "string") add(item, indexPath(path, i));
            else {
              this.#issue(indexPath(path, i), `expected a header name, got ${describe(item)}`);
              ok = false;
            }
          });
        } else if (isTable(v)) {
          for (const [name, flag] of Object.entries(v)) {
            if (typeof flag !== "boolean") {
              this.#issue(childPath(path, name), `expected true or false, got ${describe(flag)}`);
              ok = false;
            } else if (flag) add(name, childPath(path, name));
          }
        } else {
          return fail(
            `expected a table ("Name" = true) or an array of header names, got ${describe(v)}`,
          );
        }
        return ok ? check(names) : undefined;
      }
    }
  }

  #path(p: string): string {
    if (p === "") return "";
    return isAbsolute(p) ? resolve(p) : resolve(this.baseDir, p);
  }
}

/** A substituted string read as the number or boolean its key wants; unchanged otherwise. */
function fromSubstitution(v: string, type: string): unknown {
  switch (type) {
    case "int":
    case "count":
      return /^[+-]?\d+$/.test(v) ? Number(v) : v;
    case "duration":
      return /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    case "bool":
      return v === "true" ? true : v === "false" ? false : v;
    default:
      return v;
  }
}

function placeholder(type: string): unknown {
  switch (type) {
    case "string":
      return "";
    case "bool":
      return false;
    case "string[]":
    case "header-remove":
      return [];
    case "headers":
    case "string-map":
      return {};
    default:
      return 0;
  }
}

const homesCache = new WeakMap<TableNode, Map<string, string>>();

/** Key name → the table(s) where the schema defines it, as written in TOML (`[[sites.proxy.routes]]`). */
function keyHomes(schema: TableNode): Map<string, string> {
  let homes = homesCache.get(schema);
  if (homes) return homes;
  const found = new Map<string, string[]>();
  const walk = (node: TableNode, header: string) => {
    for (const [key, field] of Object.entries(node.fields)) {
      const dotted = header ? `${header.replace(/^\[+|\]+$/g, "")}.${key}` : key;
      if (field.type === "table") walk(field, `[${dotted}]`);
      else if (field.type === "table[]") walk(field.item, `[[${dotted}]]`);
      else if (header) found.set(key, [...(found.get(key) ?? []), header]);
    }
  };
  walk(schema, "");
  homes = new Map([...found].map(([k, v]) => [k, v.join(" or ")]));
  homesCache.set(schema, homes);
  return homes;
}

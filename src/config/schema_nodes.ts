/**
 * The kinds of node a config schema is made of (`schema.ts` holds the schema itself), and the
 * TypeScript type each kind builds: {@linkcode SchemaValue} turns a schema table into the type
 * of the config the validator builds from it, which `schema_types_test.ts` holds against the
 * documented interfaces of `types.ts`.
 *
 * @module
 */

/** Context for computed defaults and checks. */
export interface BuildContext {
  /** The built root so far (tables are built in schema order, so `server` precedes `sites`). */
  readonly root: Record<string, unknown>;
}

/** A default value, or a function of the table built so far (keys earlier in the schema). */
export type Default<T> = T | ((self: Record<string, unknown>, ctx: BuildContext) => T);

/** Returns an error message, or undefined when the value is fine. */
export type Check<T> = (value: T) => string | undefined;

interface Base<T> {
  /** When set the key must be present; otherwise `default` is used. */
  readonly required?: boolean;
  readonly default?: Default<T>;
  readonly check?: Check<T>;
}

export interface StringNode extends Base<string> {
  readonly type: "string";
  /** Allowed values (the message lists them). */
  readonly oneOf?: readonly string[];
  /** A file path: resolved against the config file's directory ("" stays ""). */
  readonly path?: boolean;
  readonly lowerCase?: boolean;
}
export interface BoolNode extends Base<boolean> {
  readonly type: "bool";
}
export interface IntNode extends Base<number> {
  readonly type: "int";
  readonly min?: number;
  readonly max?: number;
}
/** Any finite number (integer or float) within `min`..`max` inclusive. */
export interface NumberNode extends Base<number> {
  readonly type: "number";
  readonly min?: number;
  readonly max?: number;
}
/** An integer within `min`..`max`, or one of `keywords` (`workers = "auto"`). */
export interface CountNode extends Base<number | string> {
  readonly type: "count";
  readonly min: number;
  readonly max: number;
  readonly keywords: readonly string[];
}
/** Seconds, integer or float ≥ 0. */
export interface DurationNode extends Base<number> {
  readonly type: "duration";
}
/** Bytes: an integer or a string like "10MB" / "16MiB". */
export interface SizeNode extends Base<number> {
  readonly type: "size";
}
export interface StringListNode extends Base<readonly string[]> {
  readonly type: "string[]";
  readonly lowerCase?: boolean;
  /** Checked for every element. */
  readonly each?: Check<string>;
}
/** A table of arbitrary header names to string values. */
export interface HeaderMapNode extends Base<Record<string, string>> {
  readonly type: "headers";
}
/** Header names to remove: `{ "Name" = true }` (false keeps it) or `["Name"]`. */
export interface HeaderRemoveNode extends Base<readonly string[]> {
  readonly type: "header-remove";
}
/**
 * A table of arbitrary keys to string values: `users = { alice = "$2y$..." }`,
 * `[sites.error_pages]`.
 */
export interface StringMapNode extends Base<Record<string, string>> {
  readonly type: "string-map";
  /** Checked for every key. */
  readonly key?: Check<string>;
  /** Checked for every entry; returns an error message or undefined. */
  readonly entry?: (key: string, value: string) => string | undefined;
  /** Values are file paths (non-empty) resolved against the config file's directory. */
  readonly path?: boolean;
}
export interface TableNode {
  readonly type: "table";
  readonly fields: Readonly<Record<string, Field>>;
  /** Another key accepted for a field: `{ interval_seconds: "interval" }`. */
  readonly aliases?: Readonly<Record<string, string>>;
  readonly required?: boolean;
  /**
   * The table is a feature switched on by writing it: built as null when absent (its required
   * keys are then not asked for), as a table when present, even empty.
   */
  readonly optional?: boolean;
}
export interface TableArrayNode {
  readonly type: "table[]";
  readonly item: TableNode;
  readonly required?: boolean;
}

export type Node =
  | StringNode
  | BoolNode
  | IntNode
  | NumberNode
  | CountNode
  | DurationNode
  | SizeNode
  | StringListNode
  | HeaderMapNode
  | HeaderRemoveNode
  | StringMapNode
  | TableNode
  | TableArrayNode;

/** A node plus the property name it gets in the built config ("a.b" nests it). */
export type Field = Node & { readonly prop?: string };

/**
 * A table of `fields`. Generic so that the schema keeps its literal types, which
 * {@linkcode SchemaValue} reads.
 */
export function table<const F extends Readonly<Record<string, Field>>>(
  fields: F,
  aliases?: Readonly<Record<string, string>>,
): TableOf<F> {
  return { type: "table", fields, aliases };
}

/** A table node whose fields are known to the type system. */
export interface TableOf<F extends Readonly<Record<string, Field>>> extends TableNode {
  readonly fields: F;
}

/** An optional table (see {@linkcode TableNode.optional}): null in the built config unless
 * written. */
export function optionalTable<const F extends Readonly<Record<string, Field>>>(
  fields: F,
): TableOf<F> & { readonly optional: true } {
  return { type: "table", fields, optional: true };
}

/** `sites.proxy.strip_prefix` → `stripPrefix`. */
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}`
  : S;

/** The property a field gets: its `prop`, or its key in camelCase. */
type PropOf<K extends string, F> = F extends { readonly prop: infer P extends string } ? P
  : Camel<K>;

type Flat<Fs> = { readonly [K in keyof Fs & string as PropOf<K, Fs[K]>]: SchemaValue<Fs[K]> };

type Prefix<K> = K extends `${infer H}.${string}` ? H : never;

/** Props written `a.b` nest: `{ a: { b } }`. */
type Nest<O> =
  & { readonly [K in keyof O as K extends `${string}.${string}` ? never : K]: O[K] }
  & {
    readonly [H in Prefix<keyof O>]: {
      readonly [K in keyof O as K extends `${H}.${infer R}` ? R : never]: O[K];
    };
  };

type Simplify<T> = { readonly [K in keyof T]: T[K] };

/** The built value of a table's fields. */
export type TableValue<T> = T extends { readonly fields: infer Fs } ? Simplify<Nest<Flat<Fs>>>
  : never;

/** The type of the value the validator builds for schema node `N`. */
export type SchemaValue<N> = N extends
  { readonly type: "string"; readonly oneOf: readonly (infer U)[] } ? U
  : N extends { readonly type: "string" } ? string
  : N extends { readonly type: "bool" } ? boolean
  : N extends { readonly type: "int" | "number" | "duration" | "size" } ? number
  : N extends { readonly type: "count"; readonly keywords: readonly (infer K)[] } ? number | K
  : N extends { readonly type: "string[]" | "header-remove" } ? readonly string[]
  : N extends { readonly type: "headers" | "string-map" } ? Readonly<Record<string, string>>
  : N extends { readonly type: "table[]"; readonly item: infer I } ? readonly TableValue<I>[]
  : N extends { readonly type: "table"; readonly optional: true } ? TableValue<N> | null
  : N extends { readonly type: "table" } ? TableValue<N>
  : never;

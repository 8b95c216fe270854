/**
 * Helpers for the Prometheus text exposition format 0.0.4.
 *
 * @module
 */

/** Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n`. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c)) : v;
}

/** Escapes HELP text: `\` → `\\`, newline → `\n`. */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** `{a="x",b="y"}` from label pairs (values escaped). */
export function labels(pairs: readonly (readonly [string, string])[]): string {
  if (pairs.length === 0) return "";
  return "{" + pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",") + "}";
}

/** A sample value: integers as-is, `+Inf` / `-Inf` / `NaN` spelled as the format wants. */
export function formatValue(n: number): string {
  if (Number.isFinite(n)) return String(n);
  if (Number.isNaN(n)) return "NaN";
  return n > 0 ? "+Inf" : "-Inf";
}

/** The `# HELP` and `# TYPE` header of one metric family. */
export function header(name: string, type: "counter" | "gauge" | "histogram", help: string) {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

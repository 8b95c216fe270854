/**
 * `GET /metrics` of a process with worker threads: each worker renders its own exposition and
 * the supervisor adds them up, sample by sample (same name and labels), into its own. Adding
 * text rather than counters keeps every family any module renders, now or later, summed
 * without this file knowing it; the families the supervisor alone knows (the config
 * generation, reloads, uptime, upstream health from the shared state) are taken from it.
 *
 * A worker that died leaves its counters behind (a Prometheus counter must not go down): its
 * last exposition, without its gauges, keeps being added ({@linkcode countersOnly}).
 *
 * @module
 */

import { formatValue } from "../admin/prom_text.ts";

interface Family {
  readonly name: string;
  readonly type: string;
  /** The `# HELP` and `# TYPE` lines. */
  readonly header: string[];
  /** Sample (name and labels) → value, in first-seen order. */
  readonly samples: Map<string, number>;
}

/** Families of an exposition in order. */
function parse(text: string): Family[] {
  const families: Family[] = [];
  let current: Family | null = null;
  let help: string | null = null;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) {
      help = line;
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      current = { name, type, header: help ? [help, line] : [line], samples: new Map() };
      families.push(current);
      help = null;
      continue;
    }
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (space <= 0) continue;
    const key = line.slice(0, space);
    const value = Number(line.slice(space + 1).replace("+Inf", "Infinity"));
    if (current === null) {
      current = { name: key.replace(/\{.*$/, ""), type: "untyped", header: [], samples: new Map() };
      families.push(current);
    }
    current.samples.set(key, (current.samples.get(key) ?? 0) + value);
  }
  return families;
}

function render(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    for (const h of f.header) out.push(h + "\n");
    for (const [key, value] of f.samples) out.push(`${key} ${formatValue(value)}\n`);
  }
  return out.join("");
}

/**
 * `base` (the supervisor's exposition) with every sample of `parts` added in, except in the
 * families `own` names: those stay as `base` has them.
 */
export function mergeExpositions(
  base: string,
  parts: readonly string[],
  own: (family: string) => boolean,
): string {
  const families = parse(base);
  const byName = new Map(families.map((f) => [f.name, f]));
  for (const part of parts) {
    for (const f of parse(part)) {
      if (own(f.name)) continue;
      let into = byName.get(f.name);
      if (into === undefined) {
        into = { ...f, samples: new Map() };
        byName.set(f.name, into);
        families.push(into);
      }
      for (const [key, value] of f.samples) {
        into.samples.set(key, (into.samples.get(key) ?? 0) + value);
      }
    }
  }
  return render(families);
}

/** An exposition without its gauges: what a worker that died still adds to the counters. */
export function countersOnly(text: string): string {
  return render(parse(text).filter((f) => f.type !== "gauge"));
}

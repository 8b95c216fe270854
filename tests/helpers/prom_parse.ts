/**
 * A small strict parser for the Prometheus text exposition format 0.0.4, for tests. It throws
 * on anything a scraper would reject or that hides a bug: malformed lines, bad escapes,
 * duplicate TYPE/HELP, samples of one family split apart, samples before their TYPE, duplicate
 * series, histograms whose buckets are not cumulative or whose `+Inf` bucket differs from
 * `_count`.
 *
 * @module
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: string;
  help: string;
  readonly samples: Sample[];
}

export interface Exposition {
  readonly families: Map<string, Family>;
  /** The value of the one sample with exactly these labels, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** All samples of a sample name (e.g. `bws_request_duration_seconds_bucket`). */
  samples(name: string): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(s: string, where: string): number {
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
    throw new Error(`${where}: bad value "${s}"`);
  }
  return Number(s);
}

function familyOf(sample: string, families: Map<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === "histogram" || f.type === "summary")) return base;
    }
  }
  return sample;
}

function parseLabels(s: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // after "{"
  for (;;) {
    if (s[i] === "}") return { labels, rest: s.slice(i + 1) };
    const eq = s.indexOf("=", i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = s.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: duplicate label "${name}"`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let j = eq + 2;
    let v = "";
    for (;;) {
      const ch = s[j];
      if (ch === undefined) throw new Error(`${where}: unterminated label value`);
      if (ch === '"') break;
      if (ch === "\\") {
        const n = s[j + 1];
        if (n === "\\") v += "\\";
        else if (n === '"') v += '"';
        else if (n === "n") v += "\n";
        else throw new Error(`${where}: bad escape "\\${n}"`);
        j += 2;
        continue;
      }
      if (ch === "\n") throw new Error(`${where}: raw newline in label value`);
      v += ch;
      j++;
    }
    labels[name] = v;
    i = j + 1;
    if (s[i] === ",") i++;
    else if (s[i] !== "}") throw new Error(`${where}: expected "," or "}" after label`);
  }
}

function key(name: string, labels: Record<string, string>): string {
  return name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Parses `text` strictly; throws an Error naming the line on the first problem. */
export function parseProm(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current = "";
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, idx) => {
    const where = `line ${idx + 1} (${JSON.stringify(line)})`;
    if (line === "") return;
    const get = (name: string) => {
      let f = families.get(name);
      if (!f) {
        f = { name, type: "", help: "", samples: [] };
        families.set(name, f);
      }
      return f;
    };
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const f = get(name);
      if (kind === "TYPE") {
        if (f.type) throw new Error(`${where}: second TYPE for ${name}`);
        if (f.samples.length) throw new Error(`${where}: TYPE after samples of ${name}`);
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type "${rest}"`);
        f.type = rest;
      } else {
        if (f.help) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) {
          throw new Error(`${where}: bad HELP escape`);
        }
        f.help = rest;
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(.*)$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const name = m[1];
    let rest = m[2];
    let labels: Record<string, string> = {};
    if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, where));
    const parts = rest.split(" ");
    if (parts[0] !== "" || parts.length < 2 || parts.length > 3) {
      throw new Error(`${where}: expected " value [timestamp]"`);
    }
    const value = parseValue(parts[1], where);
    if (parts.length === 3 && !/^-?\d+$/.test(parts[2])) throw new Error(`${where}: bad timestamp`);
    const fam = familyOf(name, families);
    if (fam !== current) {
      if (closed.has(fam)) throw new Error(`${where}: samples of ${fam} are not contiguous`);
      if (current) closed.add(current);
      current = fam;
    }
    const k = key(name, labels);
    if (seen.has(k)) throw new Error(`${where}: duplicate series`);
    seen.add(k);
    get(fam).samples.push({ name, labels, value });
  });

  for (const f of families.values()) {
    if (f.type === "histogram") checkHistogram(f);
    if (f.type === "counter") {
      for (const s of f.samples) {
        if (!(s.value >= 0)) throw new Error(`counter ${s.name} is negative or NaN`);
      }
    }
  }

  return {
    families,
    value(name, labels = {}) {
      const fam = families.get(familyOf(name, families)) ?? families.get(name);
      const want = key(name, labels);
      return fam?.samples.find((s) => key(s.name, { ...s.labels }) === want)?.value;
    },
    samples(name) {
      const fam = families.get(familyOf(name, families));
      return fam ? fam.samples.filter((s) => s.name === name) : [];
    },
  };
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { les: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const g = groups.get(key("", rest)) ?? { les: [] };
    groups.set(key("", rest), g);
    if (s.name === f.name + "_bucket") {
      if (le === undefined) throw new Error(`${s.name} without le`);
      g.les.push([parseValue(le, s.name), s.value]);
    } else if (s.name === f.name + "_count") g.count = s.value;
    else if (s.name === f.name + "_sum") g.sum = s.value;
    else throw new Error(`unexpected sample ${s.name} in histogram ${f.name}`);
  }
  for (const [labels, g] of groups) {
    if (g.count === undefined || g.sum === undefined) {
      throw new Error(`${f.name}${labels}: no _count/_sum`);
    }
    for (let i = 1; i < g.les.length; i++) {
      if (!(g.les[i][0] > g.les[i - 1][0])) {
        throw new Error(`${f.name}${labels}: le not increasing`);
      }
      if (g.les[i][1] < g.les[i - 1][1]) {
        throw new Error(`${f.name}${labels}: buckets not cumulative`);
      }
    }
    const last = g.les[g.les.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${labels}: no +Inf bucket`);
    if (last[1] !== g.count) throw new Error(`${f.name}${labels}: +Inf bucket != _count`);
  }
}

/**
 * Parsers for the value formats of the config file: sizes, durations and status patterns.
 * Each returns a value or an error message (never throws), so the validator can collect issues.
 *
 * @module
 */

/** A parse outcome: the value, or a message saying what is wrong. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | {
  readonly ok: false;
  readonly message: string;
};

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/**
 * Parses a size: an integer number of bytes, or a string like "10MB", "1.5GB" (powers of 1000),
 * "512KiB", "16MiB" (powers of 1024), "100B" or "4096". Units are matched case-insensitively
 * ("kb" = "KB"); a space between number and unit is allowed.
 */
export function parseSize(input: unknown): Parsed<number> {
  if (typeof input === "number") {
    if (!Number.isInteger(input) || input < 0) {
      return {
        ok: false,
        message: `Cannot use size ${input}: expected a whole number of bytes ≥ 0`,
      };
    }
    return { ok: true, value: input };
  }
  if (typeof input !== "string") {
    return {
      ok: false,
      message: `expected a size (bytes, or a string like "10MB"), got ${describe(input)}`,
    };
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  const unit = m ? (m[2] || "B").toUpperCase() : "";
  const factor = SIZE_UNITS[unit];
  if (!m || factor === undefined) {
    return {
      ok: false,
      message: `Cannot parse size "${input}": expected bytes or a number with B, KB, MB, GB ` +
        `(×1000) or KiB, MiB, GiB (×1024), like "10MB" or "16MiB"`,
    };
  }
  const value = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(value)) {
    return { ok: false, message: `Cannot use size "${input}": too large` };
  }
  return { ok: true, value };
}

/** Parses a duration in seconds: an integer or float ≥ 0. */
export function parseDuration(input: unknown): Parsed<number> {
  if (typeof input !== "number" || !Number.isFinite(input)) {
    return {
      ok: false,
      message: `expected a duration in seconds (number), got ${describe(input)}`,
    };
  }
  if (input < 0) return { ok: false, message: `Cannot use duration ${input}: must be ≥ 0 seconds` };
  return { ok: true, value: input };
}

/** An inclusive range of HTTP status codes. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/**
 * Parses a health-check `expect_status`: comma-separated items, each "2xx", "200" or "200-299".
 */
export function parseExpectStatus(input: string): Parsed<readonly StatusRange[]> {
  const ranges: StatusRange[] = [];
  const bad = (detail: string): Parsed<readonly StatusRange[]> => ({
    ok: false,
    message: `Cannot parse expect_status "${input}": ${detail}`,
  });
  const items = input.split(",").map((s) => s.trim());
  for (const item of items) {
    let m: RegExpExecArray | null;
    if ((m = /^([1-5])xx$/i.exec(item))) {
      const h = Number(m[1]) * 100;
      ranges.push({ min: h, max: h + 99 });
    } else if ((m = /^(\d{3})$/.exec(item))) {
      ranges.push({ min: Number(m[1]), max: Number(m[1]) });
    } else if ((m = /^(\d{3})\s*-\s*(\d{3})$/.exec(item))) {
      const min = Number(m[1]);
      const max = Number(m[2]);
      if (min > max) return bad(`range "${item}" is reversed`);
      ranges.push({ min, max });
    } else {
      return bad(`"${item}" is not like 2xx, 200 or 200-299`);
    }
  }
  for (const r of ranges) {
    if (r.min < 100 || r.max > 599) return bad("status codes are 100-599");
  }
  return { ok: true, value: ranges };
}

/** A short description of a TOML value's type for messages. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string (${JSON.stringify(v)})`;
  if (typeof v === "number") return Number.isInteger(v) ? `an integer (${v})` : `a float (${v})`;
  if (typeof v === "boolean") return `a boolean (${v})`;
  if (typeof v === "bigint") return `an integer (${v})`;
  if (v instanceof Date) return "a date";
  if (typeof v === "object") return "a table";
  return typeof v;
}

/**
 * Parses the `health_check.expect_status` setting into a status predicate.
 *
 * @module
 */

/**
 * Compiles an expected-status list into a predicate. Items are separated by commas; each is an
 * exact code ("200"), a class ("2xx") or an inclusive range ("200-399").
 *
 * @param spec e.g. "2xx", "200", "200-399", "2xx,3xx"
 * @returns a function telling whether a status matches
 * @throws {SyntaxError} when an item is malformed
 * @example Usage
 * ```ts
 * const ok = parseExpectStatus("2xx,304");
 * ok(204); // true
 * ```
 */
export function parseExpectStatus(spec: string): (status: number) => boolean {
  const ranges: [number, number][] = [];
  for (const raw of spec.split(",")) {
    const item = raw.trim().toLowerCase();
    let m: RegExpMatchArray | null;
    if ((m = item.match(/^([1-5])xx$/))) {
      const base = Number(m[1]) * 100;
      ranges.push([base, base + 99]);
    } else if ((m = item.match(/^(\d{3})$/))) {
      ranges.push([Number(m[1]), Number(m[1])]);
    } else if ((m = item.match(/^(\d{3})\s*-\s*(\d{3})$/)) && Number(m[1]) <= Number(m[2])) {
      ranges.push([Number(m[1]), Number(m[2])]);
    } else {
      throw new SyntaxError(
        `Cannot parse expect_status "${spec}": "${raw.trim()}" is not a code, class or range`,
      );
    }
  }
  return (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi);
}

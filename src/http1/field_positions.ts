/**
 * Where the header fields of a head being parsed lie, as offsets from the head's start: five
 * numbers per field in one growing Int32Array, reused by every parse (a head is parsed to its end
 * before the next one starts). The request and the upstream-response parsers record fields in
 * one pass over the bytes, then decode the head once and slice names and values out of it.
 *
 * @module
 */

/** Offsets of the fields of the head being parsed. */
export class FieldPositions {
  /** Per field: name start, name end, value start, value end, flags (the parser's own). */
  at: Int32Array = new Int32Array(32 * 5);

  /** Records field `n` (0-based); offsets relative to the head's first byte. */
  set(
    n: number,
    nameStart: number,
    nameEnd: number,
    valueStart: number,
    valueEnd: number,
    flags: number,
  ): void {
    const o = n * 5;
    if (o + 5 > this.at.length) {
      const grown = new Int32Array(this.at.length * 2);
      grown.set(this.at);
      this.at = grown;
    }
    const a = this.at;
    a[o] = nameStart;
    a[o + 1] = nameEnd;
    a[o + 2] = valueStart;
    a[o + 3] = valueEnd;
    a[o + 4] = flags;
  }
}

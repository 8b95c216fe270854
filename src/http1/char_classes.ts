/**
 * Byte-class lookup tables shared by the HTTP/1.1 parsers (RFC 9110 §5.6.2 tokens, hex digits).
 *
 * @module
 */

/** tchar (RFC 9110 §5.6.2): 2 for upper-case letters, 1 for the other tchars, 0 otherwise. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 2;

/** Hex digit values plus one, 0 for other bytes. */
export const HEX = new Uint8Array(256);
for (let i = 0; i < 16; i++) {
  HEX["0123456789abcdef".charCodeAt(i)] = i + 1;
  HEX["0123456789ABCDEF".charCodeAt(i)] = i + 1;
}

/** Whether `c` is an ASCII digit. */
export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Whether `s[a, b)` equals `lower` ignoring ASCII case (`lower` is lower-case, no controls). */
export function equalsLower(s: string, a: number, b: number, lower: string): boolean {
  if (b - a !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((s.charCodeAt(a + i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

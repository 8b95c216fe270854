/**
 * String comparison whose time does not depend on where the strings differ.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Compares the UTF-8 bytes of `a` and `b` in time proportional to the expected value's length
 * (`b`), independent of the position of the first difference. Only the length can leak.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < y.length; i++) diff |= (x[i % (x.length || 1)] ?? 0) ^ y[i];
  return diff === 0;
}

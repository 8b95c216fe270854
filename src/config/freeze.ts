/**
 * Recursive `Object.freeze`.
 *
 * @module
 */

/**
 * Freezes `value` and every object and array reachable from it; returns `value`. Typed arrays
 * (an error page's bytes) cannot be frozen and are left as they are.
 */
export function deepFreeze<T>(value: T): T {
  if (
    typeof value === "object" && value !== null && !Object.isFrozen(value) &&
    !ArrayBuffer.isView(value)
  ) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Test helpers for waiting: poll a condition, or bound a promise.
 *
 * @module
 */

/**
 * Polls `ok` every `everyMs` until it holds; returns the milliseconds waited. Throws after `ms`,
 * naming `what`.
 */
export async function waitFor(
  what: string,
  ms: number,
  ok: () => boolean | Promise<boolean>,
  everyMs = 10,
): Promise<number> {
  const t0 = performance.now();
  while (!(await ok())) {
    if (performance.now() - t0 > ms) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return performance.now() - t0;
}

/** Rejects when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Cannot wait for ${what}: over ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

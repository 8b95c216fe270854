/**
 * Recognises the process (EMFILE) or the system (ENFILE) running out of file descriptors: a
 * moment's shortage of bws's own, never the fault of a file, an upstream or a client.
 *
 * @module
 */

/** Whether `err` (or the error it wraps, as fetch's do) says descriptors ran out. */
export function isDescriptorShortage(err: unknown): boolean {
  for (let e = err, depth = 0; e !== null && e !== undefined && depth < 3; depth++) {
    const code = (e as { code?: string }).code;
    if (code === "EMFILE" || code === "ENFILE") return true;
    const msg = e instanceof Error ? e.message : "";
    if (/os error 2[34]\b|too many open files/i.test(msg)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

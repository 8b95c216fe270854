/**
 * The one way bws turns a thrown value into text, for log fields and for the messages of its own
 * errors.
 *
 * @module
 */

/**
 * An Error's message (its class name when the message is empty); anything else as a string.
 * With `cause`, an Error cause's message is appended when the message does not already hold it
 * (fetch says only "fetch failed"; the reason is in the cause).
 */
export function errorText(err: unknown, options?: { readonly cause?: boolean }): string {
  if (!(err instanceof Error)) return String(err);
  const text = err.message || err.constructor.name;
  if (options?.cause !== true || !(err.cause instanceof Error)) return text;
  const cause = err.cause.message;
  return cause && !text.includes(cause) ? `${text}: ${cause}` : text;
}

/**
 * Why a file could not be read or opened, as bws's messages say it: `notFound` ("no such file"
 * unless a message family words it otherwise), "permission denied", "is a directory", else the
 * error's text.
 */
export function fileErrorText(err: unknown, notFound = "no such file"): string {
  return err instanceof Deno.errors.NotFound
    ? notFound
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : err instanceof Deno.errors.IsADirectory
    ? "is a directory"
    : errorText(err);
}

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

/**
 * Close codes that may be sent on each leg of a relayed WebSocket pair.
 *
 * Deno's `WebSocket` client (our upstream leg) only lets an application send 1000 or 3000-4999;
 * the server leg (from `Deno.upgradeWebSocket`) also sends the registered protocol codes. The
 * codes 1005, 1006 and 1015 only ever describe a close locally and never go on the wire.
 *
 * @module
 */

/** Codes our server leg can send to the client as they are. */
function sendableToClient(code: number): boolean {
  return code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1013) ||
    (code >= 3000 && code <= 4999);
}

/**
 * The code to send the client when the upstream closed with `code`: passed through when it can
 * be sent; 1005 (no status) becomes 1000; 1006/1015 and anything else (a drop) become 1011.
 */
export function clientCloseCode(code: number): number {
  if (sendableToClient(code)) return code;
  return code === 1005 ? 1000 : 1011;
}

/** Whether Deno's WebSocket client can send `code` upstream as it is. */
export function sendableUpstream(code: number): boolean {
  return code === 1000 || (code >= 3000 && code <= 4999);
}

/**
 * The code and reason to send upstream when the client closed with `code`: 1000 and 3000-4999
 * pass through; others become 1000 and, when the reason is empty, the reason names the original
 * code (e.g. "client closed: 1001") so the upstream still learns it. A connection that ended
 * without a close handshake (1006, or 0 as Deno reports a socket it dropped for a protocol error)
 * is "client went away".
 */
export function upstreamClose(code: number, reason: string): [number, string] {
  if (sendableUpstream(code)) return [code, reason];
  if (reason !== "") return [1000, reason];
  if (code === 1005) return [1000, ""];
  return [1000, code === 1006 || code === 0 ? "client went away" : `client closed: ${code}`];
}

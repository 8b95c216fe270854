/**
 * Socket reads for the two hot loops (the front end's request reads, the upstream client's
 * response reads) straight through the runtime's read op.
 *
 * `Deno.Conn.read` is an async function around that op: it adds a promise, an await and a Set
 * insert and delete per read (the Set is only there so `unref()` can reach pending reads, which
 * bws never uses). A proxied request makes two reads; going to the op directly measured 4-6 %
 * less CPU per proxied request (bws beside itself, rounds in turn, ~1.6 µs of ~37). It also
 * serves the WebSocket tunnels (both directions).
 * The op comes from the runtime's core (`runtime_core.ts`, not a public API): where it is
 * missing, or for a stream that is not a Deno socket (node:tls, which serves the TLS ports),
 * the reader is the stream's own `read`.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";
import { coreRead, coreRidSymbol } from "./runtime_core.ts";

/** Reads into `p` (never empty); resolves with the count, and with 0 or null at EOF. */
export type ReadInto = (p: Uint8Array) => Promise<number | null>;

/** The resource id of a Deno socket, or null for anything else. */
function resourceId(stream: object): number | null {
  if (coreRidSymbol === null) return null;
  const rid = (stream as Record<symbol, unknown>)[coreRidSymbol];
  return typeof rid === "number" ? rid : null;
}

/** A stream that has its own {@link ReadInto} (a front-end connection handing its socket to a
 * tunnel). */
interface HasReadInto {
  readonly readInto: ReadInto;
}

/** The fastest way to read `stream`: its own {@link ReadInto}, the runtime's read op for a Deno
 * socket, else its `read`. */
export function directReader(
  stream: ByteStream | Deno.Conn | (ByteStream & HasReadInto),
): ReadInto {
  if ("readInto" in stream && typeof stream.readInto === "function") return stream.readInto;
  const read = coreRead;
  const rid = read === null ? null : resourceId(stream);
  if (rid === null) return (p) => stream.read(p);
  return (p) => read!(rid, p);
}

/** Whether {@link directReader} takes the op path for `stream` (for tests). */
export function readsDirectly(stream: ByteStream | Deno.Conn): boolean {
  return coreRead !== null && resourceId(stream) !== null;
}

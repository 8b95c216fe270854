/**
 * Socket reads for the two hot loops (the front end's request reads, the upstream client's
 * response reads) straight through the runtime's read op.
 *
 * `Deno.Conn.read` is an async function around that op: it adds a promise, an await and a Set
 * insert and delete per read (the Set is only there so `unref()` can reach pending reads, which
 * bws never uses). A proxied request makes two reads; going to the op directly measured 4-6 %
 * less CPU per proxied request (bws beside itself, rounds in turn, ~1.6 µs of ~37).
 * The op is reached through `Deno[Deno.internal].core`, which is not a public API: when this
 * runtime does not have it (another Deno version, or a stream that is not a Deno socket, e.g.
 * node:tls for SNI) the reader is the stream's own `read`. A test fails when the direct path is
 * not taken on the pinned Deno, so an upgrade that moves it is noticed.
 *
 * @module
 */

import type { ByteStream } from "../http1/types.ts";

/** Reads into `p` (never empty); resolves with the count, and with 0 or null at EOF. */
export type ReadInto = (p: Uint8Array) => Promise<number | null>;

interface RuntimeCore {
  read(rid: number, p: Uint8Array): Promise<number>;
}

function runtimeCore(): RuntimeCore | null {
  const internal = (Deno as unknown as { internal?: symbol }).internal;
  if (internal === undefined) return null;
  const core = (Deno as unknown as Record<symbol, { core?: RuntimeCore } | undefined>)[internal]
    ?.core;
  return typeof core?.read === "function" ? core : null;
}

const core = runtimeCore();
const RID_DESCRIPTION = "Deno.internal.rid";
/** The key under which Deno sockets keep their resource id, found on the first socket seen. */
let ridKey: symbol | null = null;

function resourceId(stream: object): number | null {
  if (ridKey === null) {
    ridKey = Object.getOwnPropertySymbols(stream).find((s) => s.description === RID_DESCRIPTION) ??
      null;
    if (ridKey === null) return null;
  }
  const rid = (stream as Record<symbol, unknown>)[ridKey];
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
  const rid = core === null ? null : resourceId(stream);
  if (rid === null) return (p) => stream.read(p);
  const c = core!;
  return (p) => c.read(rid, p);
}

/** Whether {@link directReader} takes the op path for `stream` (for tests). */
export function readsDirectly(stream: ByteStream | Deno.Conn): boolean {
  return core !== null && resourceId(stream) !== null;
}

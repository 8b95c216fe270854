/**
 * The few pieces of the Deno runtime's own core that the hot path uses directly, because the
 * public wrappers around them cost more than the work (measured in the real process, where
 * every per-request call counts): the socket read op under `Deno.Conn.read`
 * (`direct_read.ts`) and the UTF-8 decode binding under `TextDecoder.decode` (`ascii_text.ts`).
 *
 * `Deno[Deno.internal].core` is not a public API. Everything here is looked up once and may be
 * missing on another Deno version: each user falls back to the public API then, and tests fail
 * when the pinned Deno (2.9.6) does not take the direct path, so an upgrade that moves it is
 * noticed rather than silently slower.
 *
 * @module
 */

/** What bws uses of the runtime's core. */
export interface RuntimeCore {
  /** The read op: resolves with the count, 0 at EOF. */
  read(rid: number, p: Uint8Array): Promise<number>;
  /** UTF-8 decode, without TextDecoder's checks. */
  decode(bytes: Uint8Array): string;
  /** The key under which Deno sockets keep their resource id. */
  internalRidSymbol?: symbol;
}

function lookUp(): Partial<RuntimeCore> | null {
  const internal = (Deno as unknown as { internal?: symbol }).internal;
  if (typeof internal !== "symbol") return null;
  const holder = (Deno as unknown as Record<symbol, { core?: Partial<RuntimeCore> } | undefined>)[
    internal
  ];
  return holder?.core ?? null;
}

const core = lookUp();

/** The runtime's read op, or null when this runtime does not expose it. */
export const coreRead: RuntimeCore["read"] | null = typeof core?.read === "function"
  ? core.read
  : null;

/** The runtime's UTF-8 decode binding, or null when this runtime does not expose it. */
export const coreDecode: RuntimeCore["decode"] | null = typeof core?.decode === "function"
  ? core.decode
  : null;

/** The symbol keying a Deno socket's resource id, when the runtime names it. */
export const coreRidSymbol: symbol | null = typeof core?.internalRidSymbol === "symbol"
  ? core.internalRidSymbol
  : null;

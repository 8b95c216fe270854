/**
 * Server name → certificate lookup with wildcard names and a default entry.
 *
 * @module
 */

import type { CertificatePair } from "./certs.ts";

/** What a handshake for a server name gets: a certificate, or none (fail the handshake). */
export type SniResult = CertificatePair | null;

/**
 * Mutable table of names (lower-case, may be `*.example.org`) to certificates; `null` marks a
 * name whose certificate is pending.
 */
export class SniTable {
  readonly #entries = new Map<string, CertificatePair | null>();
  readonly #defaultName: string | undefined;

  /** @param defaultName entry used for missing or unknown SNI. @default the first name */
  constructor(entries: ReadonlyMap<string, CertificatePair | null>, defaultName?: string) {
    for (const [name, pair] of entries) this.#entries.set(normalize(name), pair);
    this.#defaultName = defaultName === undefined ? undefined : normalize(defaultName);
  }

  /** Adds or replaces the certificate for a name. */
  set(name: string, pair: CertificatePair | null): void {
    this.#entries.set(normalize(name), pair);
  }

  /** The name whose entry answers missing or unknown SNI. */
  get defaultName(): string | undefined {
    return this.#defaultName ?? this.#entries.keys().next().value;
  }

  /** The certificate for a handshake: exact name, then `*.parent`, then the default entry. */
  resolve(serverName: string | undefined): SniResult {
    if (serverName) {
      const name = normalize(serverName);
      const exact = this.#entries.get(name);
      if (exact !== undefined) return exact;
      const dot = name.indexOf(".");
      if (dot > 0) {
        const wild = this.#entries.get("*" + name.slice(dot));
        if (wild !== undefined) return wild;
      }
    }
    const def = this.defaultName;
    return def === undefined ? null : this.#entries.get(def) ?? null;
  }

  /**
   * The one certificate that answers every handshake, when there is exactly one and no name is
   * pending: such a port can use the fast path (one certificate per listener).
   */
  single(): CertificatePair | null {
    let one: CertificatePair | null = null;
    for (const pair of this.#entries.values()) {
      if (pair === null) return null;
      if (one === null) one = pair;
      else if (one !== pair && (one.certPem !== pair.certPem || one.keyPem !== pair.keyPem)) {
        return null;
      }
    }
    return one;
  }
}

function normalize(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

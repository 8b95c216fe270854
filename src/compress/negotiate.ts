/**
 * Content-coding negotiation from Accept-Encoding (RFC 9110 §12.5.3), run per request.
 *
 * The client's q-values rank first; the site's `algorithms` order breaks ties; `q=0` refuses a
 * coding; `*` stands for every coding not named; `x-gzip` is gzip. A coding ranked below an
 * explicit `identity;q=…` loses to identity. No header, an empty header or no acceptable coding
 * means identity (no compression): like nginx and Caddy, bws does not read a missing header as
 * "anything goes".
 *
 * Browsers send a handful of distinct headers, so results are kept per header string in a small
 * bounded map: a repeated header costs one map lookup.
 *
 * @module
 */

import type { CompressionAlgorithm } from "../config/types.ts";

/** Acceptable codings, best first; empty means identity. Shared: never modify. */
export type Negotiated = readonly CompressionAlgorithm[];

const NONE: Negotiated = Object.freeze([]);

/** Distinct Accept-Encoding values remembered per negotiator. */
const CACHE_ENTRIES = 64;
/** Longer headers are negotiated every time (and not remembered). */
const CACHE_MAX_HEADER = 256;

/** Negotiates for one site's `algorithms` (server preference order). */
export class Negotiator {
  readonly #algorithms: readonly CompressionAlgorithm[];
  readonly #cache = new Map<string, Negotiated>();

  constructor(algorithms: readonly CompressionAlgorithm[]) {
    this.#algorithms = algorithms;
  }

  /** The acceptable codings for this Accept-Encoding value, best first. */
  negotiate(acceptEncoding: string | null): Negotiated {
    if (acceptEncoding === null || acceptEncoding === "" || this.#algorithms.length === 0) {
      return NONE;
    }
    const cached = this.#cache.get(acceptEncoding);
    if (cached !== undefined) return cached;
    const result = negotiate(acceptEncoding, this.#algorithms);
    if (acceptEncoding.length <= CACHE_MAX_HEADER) {
      if (this.#cache.size >= CACHE_ENTRIES) {
        this.#cache.delete(this.#cache.keys().next().value as string);
      }
      this.#cache.set(acceptEncoding, result);
    }
    return result;
  }

  /** The best acceptable coding, or null for identity. */
  best(acceptEncoding: string | null): CompressionAlgorithm | null {
    return this.negotiate(acceptEncoding)[0] ?? null;
  }
}

/** The uncached negotiation: the acceptable `algorithms`, best first. */
export function negotiate(
  acceptEncoding: string,
  algorithms: readonly CompressionAlgorithm[],
): Negotiated {
  const q = new Map<string, number>();
  for (const element of acceptEncoding.split(",")) {
    const semi = element.indexOf(";");
    let name = (semi < 0 ? element : element.slice(0, semi)).trim().toLowerCase();
    if (name === "") continue;
    if (name === "x-gzip") name = "gzip";
    const weight = semi < 0 ? 1 : qValue(element.slice(semi + 1));
    if (weight === null) continue; // a malformed weight: as if the coding were not listed
    // A coding listed twice keeps its highest weight.
    q.set(name, Math.max(weight, q.get(name) ?? 0));
  }
  const star = q.get("*");
  const identity = q.get("identity");
  const ranked: { algorithm: CompressionAlgorithm; q: number; order: number }[] = [];
  algorithms.forEach((algorithm, order) => {
    const weight = q.get(algorithm) ?? star ?? 0;
    if (weight > 0 && (identity === undefined || weight >= identity)) {
      ranked.push({ algorithm, q: weight, order });
    }
  });
  if (ranked.length === 0) return NONE;
  ranked.sort((a, b) => b.q - a.q || a.order - b.order);
  return Object.freeze(ranked.map((r) => r.algorithm));
}

/**
 * The weight in the parameters after a coding (`q=0.5`, ` Q = 1 `), 1 without a q parameter,
 * or null when the q parameter is not a qvalue (0 to 1, at most three decimals).
 */
function qValue(params: string): number | null {
  for (const param of params.split(";")) {
    const eq = param.indexOf("=");
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
    const v = param.slice(eq + 1).trim();
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) return null;
    return Number(v);
  }
  return 1;
}

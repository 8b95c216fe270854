/**
 * Certificates for the HTTPS rows of the benchmark, made with `openssl` in a temp directory
 * (a private CA and two leaves): one that covers every bench name, for a port with one
 * certificate, and one per site, for a port that picks its certificate by SNI.
 *
 * @module
 */

import { TestPki } from "../../tests/helpers/test_pki.ts";
import { BENCH_HOST, type BenchTls, type CertFiles, TLS_NAME } from "./configs.ts";

/** The bench's certificates; remove them when done. */
export interface BenchCerts {
  /** One certificate for both sites. */
  readonly one: BenchTls;
  /** A certificate per site (the port serves two and chooses by SNI). */
  readonly sni: BenchTls;
  /** The CA that issued them, for clients that verify. */
  readonly caPem: string;
  remove(): Promise<void>;
}

const API_NAMES = [BENCH_HOST, "www.bench.test", TLS_NAME];
const STATIC_NAMES = ["static.bench.test"];

const san = (names: readonly string[]) => names.map((n) => `DNS:${n}`);
const files = (leaf: CertFiles): CertFiles => ({ certFile: leaf.certFile, keyFile: leaf.keyFile });

/** Makes the CA and three leaves (EC P-256). Throws when `openssl` is missing or fails. */
export async function makeBenchCerts(): Promise<BenchCerts> {
  const pki = await TestPki.create();
  try {
    const all = await pki.issue(BENCH_HOST, san([...API_NAMES, ...STATIC_NAMES]));
    const api = await pki.issue(BENCH_HOST, san(API_NAMES));
    const stat = await pki.issue(STATIC_NAMES[0], san(STATIC_NAMES));
    return {
      one: { api: files(all), static: files(all) },
      sni: { api: files(api), static: files(stat) },
      caPem: pki.caPem,
      remove: () => pki.remove().catch(() => {}),
    };
  } catch (err) {
    await pki.remove().catch(() => {});
    throw err;
  }
}

/**
 * A minimal certificate/key pair parser for ACME results. Mirrors the shape of
 * `CertificatePair` in `src/tls/certs.ts` so the TLS layer can take it as is.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";

/** A PEM certificate chain (leaf first) with its private key. */
export interface CertificatePair {
  /** Leaf certificate followed by its intermediates, PEM. */
  readonly certPem: string;
  /** Private key of the leaf, PEM. */
  readonly keyPem: string;
  /** Expiry of the leaf. */
  readonly notAfter: Date;
  /** DNS names of the leaf's subjectAltName (lower-cased), or its CN when it has none. */
  readonly names: string[];
}

/** Parses the leaf (first certificate) of a PEM chain. Throws on anything that is not PEM X.509. */
export function parseCertificatePair(certPem: string, keyPem: string): CertificatePair {
  const first = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!first) throw new Error(`Cannot parse certificate "${certPem.slice(0, 40)}": no PEM block`);
  const leaf = new X509Certificate(first[0]);
  const names = (leaf.subjectAltName ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  if (names.length === 0) {
    const cn = leaf.subject.match(/CN=([^\n,]+)/);
    if (cn) names.push(cn[1].toLowerCase());
  }
  return { certPem, keyPem, notAfter: new Date(leaf.validTo), names };
}

/** Serial number (upper-case hex) of the leaf of a PEM chain. */
export function leafSerial(certPem: string): string {
  return new X509Certificate(certPem).serialNumber;
}

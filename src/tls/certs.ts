/**
 * Loading and checking PEM certificate/key pairs for TLS listeners.
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { errorText, fileErrorText } from "../log/error_text.ts";

/** A certificate chain with its private key, plus the facts bws needs from the leaf. */
export interface CertificatePair {
  /** PEM certificate chain, leaf first. */
  readonly certPem: string;
  /** PEM private key (PKCS#8, RSA or EC). */
  readonly keyPem: string;
  /** Expiry of the leaf certificate. */
  readonly notAfter: Date;
  /** Lower-case DNS names and IP addresses the leaf is valid for (subjectAltName, else CN). */
  readonly names: string[];
}

const CERT_MARK = "-----BEGIN CERTIFICATE-----";
const KEY_MARK = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/**
 * Parses PEM text (for example an ACME result) into a {@link CertificatePair}.
 * Checks that both are PEM and that the key belongs to the leaf certificate; does NOT reject an
 * expired certificate (callers read `notAfter`).
 *
 * @param label names the source in error messages. @default "PEM"
 * @throws Error "Cannot load certificate "<label>": <detail>"
 */
export function parseCertificatePair(
  certPem: string,
  keyPem: string,
  label = "PEM",
): CertificatePair {
  const fail = (detail: string) => new Error(`Cannot load certificate "${label}": ${detail}`);
  if (!certPem.includes(CERT_MARK)) throw fail("not a PEM certificate");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw fail(`not a PEM certificate (${errorText(err)})`);
  }
  if (!KEY_MARK.test(keyPem)) throw fail("key is not a PEM private key");
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw fail(`key is not a usable PEM private key (${errorText(err)})`);
  }
  if (!cert.checkPrivateKey(key)) throw fail("key does not match certificate");
  return { certPem, keyPem, notAfter: new Date(cert.validTo), names: namesOf(cert) };
}

/**
 * Reads a certificate chain and key from PEM files and checks them: clear errors for a missing
 * file, text that is not PEM, a key that does not match, and an expired certificate.
 *
 * @throws Error "Cannot load certificate "<certFile>": <detail>" (or "Cannot load key "<keyFile>":
 *   file not found")
 */
export async function loadCertificateFiles(
  certFile: string,
  keyFile: string,
): Promise<CertificatePair> {
  const certPem = await readPemFile(certFile, "certificate");
  const keyPem = await readPemFile(keyFile, "key");
  const pair = parseCertificatePair(
    certPem,
    keyPem,
    certFile,
  );
  assertNotExpired(pair, certFile);
  return pair;
}

/** Throws "Cannot load certificate "<certFile>": certificate expired on …" for an expired pair. */
export function assertNotExpired(pair: CertificatePair, certFile: string): void {
  if (pair.notAfter.getTime() <= Date.now()) {
    throw new Error(
      `Cannot load certificate "${certFile}": certificate expired on ${pair.notAfter.toISOString()}`,
    );
  }
}

/**
 * Reads a PEM file (`what`: "certificate" or "key").
 *
 * @throws Error "Cannot load <what> "<file>": file not found | permission denied | is a directory"
 */
export async function readPemFile(file: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    throw new Error(`Cannot load ${what} "${file}": ${fileErrorText(err, "file not found")}`);
  }
}

function namesOf(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) {
    const m = /^(DNS|IP Address):"?([^"]+)"?$/.exec(part.trim());
    if (m) names.push(m[2].toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
    if (cn) names.push(cn[1].toLowerCase());
  }
  return names;
}

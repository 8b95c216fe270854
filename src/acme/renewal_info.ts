/**
 * ACME Renewal Information (ARI, RFC 9773): asks the CA when it would like a certificate renewed.
 * The certificate ID, the parsing of the answer and the choice of a renewal instant are plain
 * functions; {@link RenewalInfoClient} fetches the directory and the renewal info over HTTPS.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { errorText } from "../log/error_text.ts";
import { AcmeError } from "./errors.ts";

/** The CA's suggested renewal window (RFC 9773 §4.2), as epoch milliseconds. */
export interface RenewalWindow {
  /** Earliest suggested renewal instant. */
  readonly start: number;
  /** Latest suggested renewal instant; always after `start`. */
  readonly end: number;
  /** A page explaining the window (e.g. a revocation notice), when the CA gives one. */
  readonly explanationUrl?: string;
}

/** One renewal info answer. */
export interface RenewalInfo {
  readonly certId: string;
  readonly window: RenewalWindow;
  /** When to ask again, in milliseconds from now (Retry-After, clamped; see {@link retryAfterMs}). */
  readonly retryAfterMs: number;
}

const HOUR_MS = 3_600_000;
/** Shortest and longest wait before asking again, and the wait without Retry-After. */
export const ARI_POLL_MIN_MS = HOUR_MS;
export const ARI_POLL_MAX_MS = 24 * HOUR_MS;
export const ARI_POLL_DEFAULT_MS = 6 * HOUR_MS;

/** How long a fetched directory is reused before it is fetched again. */
const DIRECTORY_MAX_AGE_MS = 24 * HOUR_MS;

/** OID 2.5.29.35 (authorityKeyIdentifier), DER content bytes. */
const AKI_OID = [0x55, 0x1d, 0x23];

interface Tlv {
  readonly tag: number;
  /** First content byte. */
  readonly start: number;
  /** One past the last content byte. */
  readonly end: number;
}

/** Reads one DER TLV at `at` (single-byte tags, definite lengths, as X.509 DER always has). */
function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error("truncated DER");
  const tag = der[at];
  let len = der[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  if (start + len > limit) throw new Error("truncated DER");
  return { tag, start, end: start + len };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const tlv = readTlv(der, at, parent.end);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

function sameBytes(der: Uint8Array, tlv: Tlv, bytes: readonly number[]): boolean {
  return tlv.end - tlv.start === bytes.length && bytes.every((b, i) => der[tlv.start + i] === b);
}

/**
 * The ARI certificate ID of the first (leaf) certificate in `certPem`: base64url of the
 * authorityKeyIdentifier's keyIdentifier, ".", base64url of the serial number's DER content
 * bytes (RFC 9773 §4.1), both without padding.
 *
 * @throws AcmeError "renewal_info": "Cannot compute renewal info ID "<subject>": <detail>" (no
 *   AKI key identifier, unreadable DER); node:crypto's error when `certPem` is no certificate
 */
export function ariCertId(certPem: string): string {
  const cert = new X509Certificate(certPem);
  const fail = (detail: string) =>
    new AcmeError(
      "renewal_info",
      `Cannot compute renewal info ID "${cert.subject.replace(/\n/g, ", ")}": ${detail}`,
    );
  const der = new Uint8Array(cert.raw);
  let serial: Tlv | undefined;
  let keyId: Tlv | undefined;
  try {
    const certificate = readTlv(der, 0, der.length);
    const tbs = children(der, certificate)[0];
    const fields = children(der, tbs);
    // TBSCertificate: [0] version (optional), serialNumber, ..., [3] extensions.
    serial = fields.find((f) => f.tag === 0x02);
    const extensions = fields.find((f) => f.tag === 0xa3);
    const list = extensions ? children(der, children(der, extensions)[0]) : [];
    for (const ext of list) {
      const [oid, ...rest] = children(der, ext);
      if (oid.tag !== 0x06 || !sameBytes(der, oid, AKI_OID)) continue;
      const value = rest.find((t) => t.tag === 0x04);
      if (!value) break;
      const aki = readTlv(der, value.start, value.end);
      keyId = children(der, aki).find((t) => t.tag === 0x80); // [0] IMPLICIT keyIdentifier
      break;
    }
  } catch (err) {
    throw fail(errorText(err));
  }
  if (!serial) throw fail("no serial number");
  if (!keyId) throw fail("no authority key identifier");
  const b64 = (t: Tlv) => Buffer.from(der.subarray(t.start, t.end)).toString("base64url");
  return `${b64(keyId)}.${b64(serial)}`;
}

/**
 * Parses a renewal info response body (`{"suggestedWindow":{"start","end"},"explanationURL"?}`).
 *
 * @throws AcmeError "renewal_info": "Cannot use renewal info "<text>": <detail>" when the window
 *   is missing, not RFC 3339 dates, or ends before it starts
 */
export function parseRenewalInfo(body: unknown): RenewalWindow {
  const fail = (detail: string) =>
    new AcmeError(
      "renewal_info",
      `Cannot use renewal info "${JSON.stringify(body)?.slice(0, 200)}": ${detail}`,
    );
  const window = (body as { suggestedWindow?: unknown } | null)?.suggestedWindow as
    | { start?: unknown; end?: unknown }
    | undefined;
  if (typeof window !== "object" || window === null) throw fail("no suggestedWindow");
  if (typeof window.start !== "string" || typeof window.end !== "string") {
    throw fail("suggestedWindow needs start and end");
  }
  const start = Date.parse(window.start);
  const end = Date.parse(window.end);
  if (Number.isNaN(start) || Number.isNaN(end)) throw fail("start or end is not a date");
  if (end <= start) throw fail("suggestedWindow ends before it starts");
  const explanation = (body as { explanationURL?: unknown }).explanationURL;
  return typeof explanation === "string"
    ? { start, end, explanationUrl: explanation }
    : { start, end };
}

/**
 * Milliseconds to wait before asking for renewal info again: the Retry-After header (seconds or
 * HTTP date), clamped to 1 h .. 24 h; 6 h when absent or unreadable.
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number {
  if (header === null || header.trim() === "") return ARI_POLL_DEFAULT_MS;
  const text = header.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (Number.isNaN(ms)) return ARI_POLL_DEFAULT_MS;
  return Math.min(Math.max(ms, ARI_POLL_MIN_MS), ARI_POLL_MAX_MS);
}

/**
 * A uniformly random instant in the window (RFC 9773 §4.2). An instant in the past, which is
 * always the case once the window's end has passed, means "renew now".
 *
 * @param random a number in [0, 1). @default Math.random()
 */
export function chooseRenewalTime(window: RenewalWindow, random: number = Math.random()): number {
  return window.start + Math.floor(random * (window.end - window.start));
}

/** Options of {@link RenewalInfoClient}. */
export interface RenewalInfoClientOptions {
  /** ACME directory URL of the CA. */
  directoryUrl: string;
  /** Extra CA certificates (PEM) to trust; default: Deno's store, which honours `DENO_CERT`. */
  caCerts?: readonly string[];
  /** Aborts every request (the manager's stop). */
  signal: AbortSignal;
  /** Timeout of one request, in milliseconds. */
  timeoutMs: number;
}

/** Fetches renewal info from the CA named by an ACME directory URL. */
export class RenewalInfoClient {
  readonly #opts: RenewalInfoClientOptions;
  #http?: Deno.HttpClient;
  #directory?: { url: Promise<string | null>; at: number };

  constructor(opts: RenewalInfoClientOptions) {
    this.#opts = opts;
  }

  /**
   * The CA's renewal info for the leaf of `certPem`, or null when the CA's directory has no
   * `renewalInfo` resource.
   *
   * @throws AcmeError "renewal_info" on an HTTP error, an unreadable answer, or a certificate
   *   without an authority key identifier; fetch's error on a network failure
   */
  async lookup(certPem: string): Promise<RenewalInfo | null> {
    const certId = ariCertId(certPem);
    const base = await this.#renewalInfoUrl();
    if (base === null) return null;
    const url = `${base.replace(/\/+$/, "")}/${certId}`;
    const res = await this.#get(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new AcmeError("renewal_info", `Cannot get renewal info "${url}": HTTP ${res.status}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new AcmeError("renewal_info", `Cannot get renewal info "${url}": ${errorText(err)}`, {
        cause: err,
      });
    }
    return {
      certId,
      window: parseRenewalInfo(body),
      retryAfterMs: retryAfterMs(res.headers.get("retry-after")),
    };
  }

  /** Releases the HTTP client; the owner aborts running requests through its signal. */
  close(): void {
    this.#http?.close();
    this.#http = undefined;
  }

  #renewalInfoUrl(): Promise<string | null> {
    const now = Date.now();
    if (this.#directory && now - this.#directory.at < DIRECTORY_MAX_AGE_MS) {
      return this.#directory.url;
    }
    const { directoryUrl } = this.#opts;
    const url = (async () => {
      const res = await this.#get(directoryUrl);
      if (!res.ok) {
        await res.body?.cancel();
        throw new AcmeError(
          "renewal_info",
          `Cannot read ACME directory "${directoryUrl}": HTTP ${res.status}`,
        );
      }
      const dir = await res.json() as { renewalInfo?: unknown };
      return typeof dir?.renewalInfo === "string" ? dir.renewalInfo : null;
    })();
    const entry = { url, at: now };
    this.#directory = entry;
    // A failed read is retried on the next lookup.
    url.catch(() => {
      if (this.#directory === entry) this.#directory = undefined;
    });
    return url;
  }

  #get(url: string): Promise<Response> {
    const { caCerts, signal, timeoutMs } = this.#opts;
    if (caCerts && caCerts.length > 0) {
      this.#http ??= Deno.createHttpClient({ caCerts: [...caCerts] });
    }
    return fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      client: this.#http,
    });
  }
}

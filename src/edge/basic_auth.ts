/**
 * `[sites.basic_auth]`: HTTP Basic authentication (RFC 7617) against bcrypt hashes from
 * `users` and/or an htpasswd file.
 *
 * - Missing or wrong credentials: 401 with `WWW-Authenticate: Basic realm="…", charset="UTF-8"`.
 * - An unknown user costs the same bcrypt check as a known one (against a stand-in hash of the
 *   same cost), so response times do not tell which user names exist.
 * - A verified credential is remembered (see credential_cache.ts); simultaneous requests with
 *   the same credential share one check.
 * - The client's Authorization goes upstream only with `forward_authorization = true`: otherwise
 *   the pass verdict asks the request path to remove it.
 *
 * @module
 */

import type { BasicAuthConfig } from "../config/types.ts";
import type { HttpRequest } from "../http1/types.ts";
import { bcryptCost } from "./bcrypt_hash.ts";
import { type BcryptVerifier, sharedBcryptVerifier } from "./bcrypt_verifier.ts";
import { CredentialCache, credentialKey } from "./credential_cache.ts";
import { readHtpasswdFileSync } from "./htpasswd.ts";
import { refusalResponse } from "./responses.ts";
import type { EdgeCheck, EdgeRefusal, EdgeUpstreamEdit, EdgeVerdict } from "./types.ts";

/** Options of {@link BasicAuth}. */
export interface BasicAuthOptions {
  /** @default the process's shared worker-thread verifier */
  readonly verifier?: BcryptVerifier;
  /** @default a cache of 1024 credentials for 5 minutes */
  readonly cache?: CredentialCache;
  /** Epoch ms. @default Date.now */
  readonly clock?: () => number;
}

const REMOVE_AUTHORIZATION: EdgeUpstreamEdit = Object.freeze({
  refused: false,
  removeHeaders: Object.freeze(["authorization"]),
  addHeaders: Object.freeze([]),
});

const decoder = new TextDecoder();

/** User and password of a `Basic` Authorization value, or null when it is not one. */
export function parseBasicCredentials(
  header: string,
): { user: string; password: string } | null {
  const m = /^basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (m === null) return null;
  let binary: string;
  try {
    binary = atob(m[1]);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const text = decoder.decode(bytes);
  const colon = text.indexOf(":");
  if (colon < 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** `"…"` with `\` and `"` escaped (RFC 9110 quoted-string). */
function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => "\\" + c)}"`;
}

/** The compiled basic auth of one site or route. */
export class BasicAuth implements EdgeCheck {
  readonly rule = "basic_auth" as const;
  readonly #users: ReadonlyMap<string, string>;
  readonly #standIn: string;
  readonly #pass: EdgeUpstreamEdit | null;
  readonly #challenge: EdgeRefusal;
  readonly #busy: EdgeRefusal;
  readonly #verifier: BcryptVerifier;
  readonly #cache: CredentialCache;
  readonly #clock: () => number;
  readonly #inFlight = new Map<string, Promise<boolean>>();

  /** Reads `htpasswd_file` (synchronously); throws when it cannot be used. */
  constructor(config: BasicAuthConfig, opts: BasicAuthOptions = {}) {
    const users = new Map(Object.entries(config.users));
    if (config.htpasswdFile !== "") {
      const file = readHtpasswdFileSync(config.htpasswdFile);
      if (!file.ok) throw new Error(file.problems.join("\n"));
      for (const [user, hash] of file.users) if (!users.has(user)) users.set(user, hash);
    }
    this.#users = users;
    const cost = Math.max(4, ...[...users.values()].map(bcryptCost));
    // Any well-formed hash of the same cost takes as long to check; no password matches it.
    this.#standIn = `$2b$${String(cost).padStart(2, "0")}$${"N".repeat(22)}${"u".repeat(31)}`;
    this.#pass = config.forwardAuthorization ? null : REMOVE_AUTHORIZATION;
    this.#challenge = {
      refused: true,
      rule: "basic_auth",
      response: refusalResponse(401, [
        ["www-authenticate", `Basic realm=${quoted(config.realm)}, charset="UTF-8"`],
      ]),
    };
    this.#busy = {
      refused: true,
      rule: "basic_auth",
      response: refusalResponse(503, [["retry-after", "1"]]),
    };
    this.#verifier = opts.verifier ?? sharedBcryptVerifier();
    this.#cache = opts.cache ?? new CredentialCache();
    this.#clock = opts.clock ?? Date.now;
  }

  /** Users that can sign in (from `users` and the htpasswd file). */
  get userCount(): number {
    return this.#users.size;
  }

  check(req: HttpRequest, _client: string): EdgeVerdict | Promise<EdgeVerdict> {
    const header = req.headers.get("authorization");
    const cred = header === null ? null : parseBasicCredentials(header);
    if (cred === null) return this.#challenge;
    const stored = this.#users.get(cred.user);
    const hash = stored ?? this.#standIn;
    const key = credentialKey(cred.user, cred.password, hash);
    if (stored !== undefined && this.#cache.has(key, this.#clock())) return this.#pass;
    return this.#verify(key, cred.password, hash, stored !== undefined);
  }

  async #verify(key: string, password: string, hash: string, known: boolean): Promise<EdgeVerdict> {
    let check = this.#inFlight.get(key);
    if (check === undefined) {
      check = this.#verifier.verify(password, hash);
      this.#inFlight.set(key, check);
      const forget = () => this.#inFlight.delete(key);
      check.then(forget, forget);
    }
    let ok: boolean;
    try {
      ok = await check;
    } catch {
      // Busy (VerifierBusyError) or the worker failed: the credential could not be checked.
      return this.#busy;
    }
    if (!ok || !known) return this.#challenge;
    this.#cache.add(key, this.#clock());
    return this.#pass;
  }
}

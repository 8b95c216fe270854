/**
 * The conversation with the CA: the ACME account (its key created once and kept in the store),
 * orders over HTTP-01, and the challenge tokens answered while an order runs.
 *
 * @module
 */

import * as acme from "acme-client";
import { join } from "node:path";
import { errorText } from "../log/error_text.ts";
import type { Logger } from "../log/types.ts";
import { type CertificatePair, parseCertificatePair } from "../tls/certs.ts";
import { AcmeError, isAcmeError } from "./errors.ts";
import { atomicWrite } from "./storage.ts";
import type { AcmeStore, RenewalLease } from "./store.ts";

/** What {@linkcode CaOrders} needs of the manager's options. */
export interface CaOrderOptions {
  readonly directoryUrl: string;
  readonly email: string;
  readonly challengeDir: string;
  readonly pollMinMs: number;
  readonly store: AcmeStore;
  readonly logger?: Logger;
  /** True once the manager stopped: no new order starts. */
  readonly stopped: () => boolean;
}

export class CaOrders {
  readonly #opts: CaOrderOptions;
  readonly #store: AcmeStore;
  readonly #log?: Logger;
  /** Key authorizations of the challenges of the orders running now, by token. */
  readonly #tokens = new Map<string, string>();
  #client?: Promise<acme.Client>;

  constructor(opts: CaOrderOptions) {
    this.#opts = opts;
    this.#store = opts.store;
    this.#log = opts.logger;
  }

  /** Key authorization for an HTTP-01 token of a running order, or null. */
  challengeResponse(token: string): string | null {
    return this.#tokens.get(token) ?? null;
  }

  /** Forgets the tokens (the manager stopped). */
  clear(): void {
    this.#tokens.clear();
  }

  /**
   * Orders a certificate for `names` (HTTP-01), finalizes it with a fresh key and CSR and
   * stores key and chain under `lease`.
   */
  async order(names: string[], lease: RenewalLease): Promise<CertificatePair> {
    if (this.#opts.stopped()) {
      throw new AcmeError("stopped", `Cannot obtain certificate "${names[0]}": manager stopped`);
    }
    const client = await this.#accountClient();
    const keyPem = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
    const [, csr] = await acme.crypto.createCsr(
      names[0].length <= 64 ? { commonName: names[0], altNames: names } : { altNames: names },
      keyPem,
    );
    await this.#register(client);
    const tokens: string[] = [];
    const certPem = await client.auto({
      csr,
      email: this.#opts.email || undefined,
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      // acme-client would fetch the challenge itself from port 80 of each name first; our own
      // server's name need not resolve from here, so the CA's validation is the only check.
      skipChallengeVerification: true,
      challengeCreateFn: (_authz, challenge, keyAuthorization) => {
        if (challenge.type !== "http-01") {
          return Promise.reject(
            new AcmeError("order", `Cannot answer challenge "${challenge.type}"`),
          );
        }
        tokens.push(challenge.token);
        this.#tokens.set(challenge.token, keyAuthorization);
        return Promise.all([
          this.#store.writeChallenge(challenge.token, keyAuthorization),
          this.#writeChallengeFile(challenge.token, keyAuthorization),
        ]).then(() => {});
      },
      challengeRemoveFn: (_authz, challenge) => this.#forgetChallenge(challenge.token),
    }).finally(() => Promise.all(tokens.map((t) => this.#forgetChallenge(t))));
    const pair = parseCertificatePair(certPem, keyPem);
    if (!names.every((n) => pair.names.includes(n))) {
      throw new AcmeError(
        "names",
        `Cannot use certificate for "${names.join(",")}": it names ${pair.names.join(",")}`,
      );
    }
    try {
      await this.#store.writeCertificate(names, { certPem, keyPem }, lease);
    } catch (err) {
      // The certificate is valid: serve it; the instance that took the lock over stores its own.
      if (!isAcmeError(err, "lock_lost")) throw err;
      this.#log?.warn(`Cannot store certificate for "${names.join(",")}": ${errorText(err)}`);
    }
    this.#log?.info(`Obtained certificate for "${names.join(",")}"`, {
      notAfter: pair.notAfter.toISOString(),
    });
    return pair;
  }

  /**
   * Finds or creates the account of the key. With an existing account, acme-client's auto() would
   * re-send `{ termsOfServiceAgreed }` as an account update, which a CA may refuse as an "empty
   * update" (Pebble does) when there is no contact to set: so without an email the existing
   * account is looked up first (onlyReturnExisting, then a POST-as-GET).
   */
  async #register(client: acme.Client): Promise<void> {
    try {
      client.getAccountUrl();
      return; // registered earlier in this process
    } catch { /* not yet */ }
    if (this.#opts.email === "") {
      try {
        await client.createAccount({ onlyReturnExisting: true });
        return;
      } catch { /* no account for this key yet (or the lookup failed): create it below */ }
    }
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.#opts.email ? { contact: [`mailto:${this.#opts.email}`] } : {}),
    });
  }

  async #writeChallengeFile(token: string, keyAuthorization: string): Promise<void> {
    if (this.#opts.challengeDir === "" || !/^[A-Za-z0-9_-]+$/.test(token)) return;
    await atomicWrite(join(this.#opts.challengeDir, token), keyAuthorization, 0o644);
  }

  async #forgetChallenge(token: string): Promise<void> {
    this.#tokens.delete(token);
    await this.#store.removeChallenge(token).catch(() => {}); // it expires by itself
    if (this.#opts.challengeDir === "" || !/^[A-Za-z0-9_-]+$/.test(token)) return;
    await Deno.remove(join(this.#opts.challengeDir, token)).catch(() => {});
  }

  #accountClient(): Promise<acme.Client> {
    this.#client ??= (async () => {
      let accountKey = await this.#store.readAccountKey();
      if (accountKey === null) {
        const created = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
        // Another instance may have stored one meanwhile: the stored key wins.
        accountKey = await this.#store.writeAccountKey(created);
        if (accountKey === created) {
          this.#log?.info(`Created ACME account key in "${this.#store.label}"`);
        }
      }
      // No account URL is kept: newAccount with a known key returns the existing account, so a
      // CA that forgot it (a test CA restarted) costs nothing special.
      return new acme.Client({
        directoryUrl: this.#opts.directoryUrl,
        accountKey,
        backoffMin: this.#opts.pollMinMs,
        backoffMax: Math.max(this.#opts.pollMinMs, 10_000),
        backoffAttempts: 12,
      });
    })();
    // A failed setup (unreadable storage) is retried on the next attempt.
    this.#client.catch(() => (this.#client = undefined));
    return this.#client;
  }
}

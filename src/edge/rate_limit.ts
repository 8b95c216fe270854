/**
 * `[sites.rate_limit]`: a token bucket per key ("ip", or "header:NAME" where requests without
 * that header share one bucket). Over the limit: 429 with `Retry-After` (whole seconds, ≥ 1)
 * and the IETF `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers,
 * structured-field form: `"default";q=20;w=2` and `"default";r=0;t=1`).
 *
 * The bucket of `burst` tokens refilled at `rate` per second is announced as a quota of `burst`
 * requests per window of `ceil(burst / rate)` seconds, the time an empty bucket takes to fill.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { RateLimitConfig } from "../config/types.ts";
import type { HttpRequest } from "../http1/types.ts";
import { type BucketStore, LocalBucketStore, type TakeResult } from "./bucket_store.ts";
import { refusalResponse } from "./responses.ts";
import type { EdgeCheck, EdgeRefusal } from "./types.ts";

/** Header keys longer than this are stored as their hash, so a key costs a bounded size. */
const MAX_KEY_LENGTH = 64;

/** The policy name used in the RateLimit fields. */
const POLICY = '"default"';

/** Makes the store for one compiled rate limit (a shared store can namespace by `scope`). */
export type BucketStoreFactory = (config: RateLimitConfig, scope: string) => BucketStore;

/** The per-process store. */
export const localBucketStores: BucketStoreFactory = (config) =>
  new LocalBucketStore({ rate: config.rate, burst: config.burst });

/** The compiled rate limit of one site or route. */
export class RateLimit implements EdgeCheck {
  readonly rule = "rate_limit" as const;
  readonly store: BucketStore;
  /** Lower-case header name for a "header:NAME" key, null for "ip". */
  readonly #header: string | null;
  readonly #policyField: string;
  readonly #clock: () => number;

  /**
   * @param scope names this limit for a shared store ("site/main", "site/main/route/api/")
   * @param clock epoch ms; tests move time with it
   */
  constructor(
    config: RateLimitConfig,
    opts: { scope?: string; stores?: BucketStoreFactory; clock?: () => number } = {},
  ) {
    this.#header = config.key === "ip" ? null : config.key.slice("header:".length).toLowerCase();
    this.store = (opts.stores ?? localBucketStores)(config, opts.scope ?? "");
    const window = Math.max(1, Math.ceil(config.burst / config.rate));
    this.#policyField = `${POLICY};q=${config.burst};w=${window}`;
    this.#clock = opts.clock ?? Date.now;
  }

  /** The bucket key of a request. */
  keyOf(req: HttpRequest, client: string): string {
    if (this.#header === null) return client;
    const value = req.headers.get(this.#header) ?? "";
    if (value.length <= MAX_KEY_LENGTH) return value;
    return "#" + createHash("sha256").update(value).digest("base64");
  }

  check(req: HttpRequest, client: string): EdgeRefusal | null | Promise<EdgeRefusal | null> {
    const taken = this.store.take(this.keyOf(req, client), 1, this.#clock());
    if (taken instanceof Promise) return taken.then((t) => this.#verdict(t));
    return taken.allowed ? null : this.#refuse(taken);
  }

  #verdict(t: TakeResult): EdgeRefusal | null {
    return t.allowed ? null : this.#refuse(t);
  }

  #refuse(t: TakeResult): EdgeRefusal {
    const seconds = Math.max(1, Math.ceil(t.retryAfterMs / 1000));
    return {
      refused: true,
      rule: "rate_limit",
      response: refusalResponse(429, [
        ["retry-after", String(seconds)],
        ["ratelimit-policy", this.#policyField],
        ["ratelimit", `${POLICY};r=${t.remaining};t=${seconds}`],
      ]),
    };
  }
}

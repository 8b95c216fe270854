/**
 * Compression of proxied responses (`[sites.compression] proxy = true`), in two steps around the
 * upstream exchange:
 *
 * - {@link ProxyCompression.begin}, before the request goes upstream: negotiates the client's
 *   Accept-Encoding, and when the client's If-None-Match holds a tag bws gave out for the coding
 *   it would use again (`"abc-gzip"`), sends the upstream its own tag (`"abc"`) instead, so the
 *   upstream can answer 304.
 * - {@link ProxiedCoding.apply}, on the upstream's response: a 304 to a rewritten If-None-Match
 *   gets the suffix back on its ETag; any other response goes through `compressResponse`
 *   (streamed, each chunk flushed as it arrives). Responses that arrive with Content-Encoding, and
 *   the other exclusions of the policy, pass as they are.
 *
 * Built once per site and config; a request on a site without proxy compression costs nothing.
 *
 * @module
 */

import type { CompressionAlgorithm, CompressionConfig } from "../config/types.ts";
import type { EdgeUpstreamEdit } from "../edge/types.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import { compressResponse } from "./compress_response.ts";
import { type Negotiated, Negotiator } from "./negotiate.ts";
import { CompressionPolicy, notModifiedHeaders, upstreamIfNoneMatch } from "./policy.ts";

/** One site's proxied-response compression. */
export class ProxyCompression {
  readonly policy: CompressionPolicy;
  readonly #negotiator: Negotiator;

  constructor(config: CompressionConfig) {
    this.policy = new CompressionPolicy(config);
    this.#negotiator = new Negotiator(config.algorithms);
  }

  /** Whether `config` asks for proxied responses to be compressed. */
  static enabled(config: CompressionConfig): boolean {
    return config.proxy && config.algorithms.length > 0;
  }

  /**
   * The coding of one request's response, and the edit of the upstream request it needs: `edit`
   * (an edge rule's) with If-None-Match replaced when the client sent bws's tags.
   */
  begin(req: HttpRequest, edit: EdgeUpstreamEdit | null): ProxiedCoding {
    const accepted = this.#negotiator.negotiate(req.headers.get("accept-encoding"));
    const algorithm = accepted[0];
    if (algorithm !== undefined) {
      const inm = req.headers.get("if-none-match");
      if (inm !== null) {
        const upstream = upstreamIfNoneMatch(inm, algorithm);
        if (upstream.changed) {
          const rewritten = withIfNoneMatch(edit, upstream.value);
          return new ProxiedCoding(this.policy, req.method, accepted, rewritten, algorithm);
        }
      }
    }
    return new ProxiedCoding(this.policy, req.method, accepted, edit, null);
  }
}

/** What one proxied request will do with its response. */
export class ProxiedCoding {
  readonly #policy: CompressionPolicy;
  readonly #method: string;
  readonly #accepted: Negotiated;
  /** The edit to apply to the upstream request (the edge rule's, maybe with If-None-Match). */
  readonly edit: EdgeUpstreamEdit | null;
  /** The coding whose tags were turned back into the upstream's in If-None-Match, or null. */
  readonly #untagged: CompressionAlgorithm | null;

  constructor(
    policy: CompressionPolicy,
    method: string,
    accepted: Negotiated,
    edit: EdgeUpstreamEdit | null,
    untagged: CompressionAlgorithm | null,
  ) {
    this.#policy = policy;
    this.#method = method;
    this.#accepted = accepted;
    this.edit = edit;
    this.#untagged = untagged;
  }

  /**
   * The client's response for the upstream's `res`. Rejects only when a body of unknown length
   * fails while its first `min_size` bytes are read ahead (the body is cancelled by then).
   */
  apply(res: HttpResponse): Promise<HttpResponse> | HttpResponse {
    if (res.status === 304) {
      if (this.#untagged === null) return res;
      return { ...res, headers: notModifiedHeaders(res.headers, this.#untagged) };
    }
    return compressResponse(res, {
      policy: this.#policy,
      method: this.#method,
      accepted: this.#accepted,
      flushEachChunk: true,
    });
  }
}

/** `edit` with every If-None-Match of the client replaced by `value`. */
function withIfNoneMatch(edit: EdgeUpstreamEdit | null, value: string): EdgeUpstreamEdit {
  return {
    refused: false,
    removeHeaders: [...(edit?.removeHeaders ?? []), "if-none-match"],
    addHeaders: [...(edit?.addHeaders ?? []), ["if-none-match", value]],
  };
}

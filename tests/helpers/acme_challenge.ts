/**
 * Test helper: answers HTTP-01 challenge requests from an `AcmeManager` (or a stand-in), for the
 * ACME tests that run a `Deno.serve` of their own as the CA's validation target. bws itself
 * answers challenges in `src/server/handle_request.ts`.
 *
 * @module
 */

/** Path prefix of HTTP-01 challenge requests (RFC 8555 section 8.3). */
export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** Anything that knows key authorizations by token, such as an `AcmeManager`. */
export interface ChallengeSource {
  challengeResponse(token: string): string | null;
}

/**
 * Answers `GET /.well-known/acme-challenge/<token>` from `sources` (the first that knows the
 * token wins): 200 text/plain with the key authorization, or 404 for an unknown token.
 * Returns null when the request is not a challenge request, so the caller handles it as usual.
 */
export function answerChallenge(
  sources: ChallengeSource | readonly ChallengeSource[],
  req: Request,
): Response | null {
  if (req.method !== "GET" && req.method !== "HEAD") return null;
  const path = new URL(req.url).pathname;
  if (!path.startsWith(ACME_CHALLENGE_PREFIX)) return null;
  const token = path.slice(ACME_CHALLENGE_PREFIX.length);
  const list = Array.isArray(sources) ? sources : [sources as ChallengeSource];
  if (/^[A-Za-z0-9_-]+$/.test(token)) {
    for (const source of list) {
      const answer = source.challengeResponse(token);
      if (answer !== null) {
        return new Response(req.method === "HEAD" ? null : answer, {
          headers: { "content-type": "text/plain", "cache-control": "no-store" },
        });
      }
    }
  }
  return new Response("Not Found\n", { status: 404, headers: { "content-type": "text/plain" } });
}

/**
 * The first proxy phase: what body goes upstream and whether it may. The front end has already
 * refused every malformed framing (conflicting lengths, unknown codings); here the site's body
 * limit applies and CONNECT is refused (bws does not tunnel).
 *
 * @module
 */

import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import { errorResponse } from "./error_response.ts";
import type { RequestContext } from "./request_context.ts";

/** The body to send upstream, or a refusal. */
export type Framing =
  | { readonly ok: true; readonly bodyLength: number | null }
  | { readonly ok: false; readonly response: HttpResponse };

/** Checks method and body against the site's limit (`maxBodySize` bytes). */
export function requestFraming(
  req: HttpRequest,
  ctx: RequestContext,
  maxBodySize: number,
): Framing {
  if (req.method === "CONNECT") {
    ctx.error = "CONNECT is not supported";
    return { ok: false, response: errorResponse(501, ctx.requestId, undefined, true) };
  }
  const length = req.bodyLength;
  if (length !== null && length > maxBodySize) {
    ctx.error = `request body of ${length} bytes over limit ${maxBodySize}`;
    // The body is not read: the connection closes after the answer.
    return { ok: false, response: errorResponse(413, ctx.requestId, undefined, true) };
  }
  return { ok: true, bodyLength: req.body === null ? null : length };
}

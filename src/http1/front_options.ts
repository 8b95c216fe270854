/**
 * What the HTTP/1.1 front end is told by its listener: the handler, timeouts and head limits,
 * and the callbacks for requests it answers itself and for HTTP/2 handovers.
 *
 * @module
 */

import type { HeadLimits } from "./request_head.ts";
import type { ByteStream, HttpHandler, Peer } from "./types.ts";

/** Client-side timeouts in milliseconds (0 = none). */
export interface FrontTimeouts {
  readonly headerMs: number;
  readonly keepAliveMs: number;
  readonly bodyMs: number;
  readonly sendMs: number;
}

/** A request the front end answered itself (malformed, too large, timed out). */
export interface RefusedRequest {
  readonly status: number;
  readonly detail: string;
  readonly peer: Peer;
  /** What was parsed of the request line ("" when nothing usable). */
  readonly method: string;
  readonly target: string;
  readonly time: number;
  readonly durationMs: number;
  /** Bytes of the answer's body. */
  readonly bytes: number;
}

/** How a listener's connections behave; replaced as a whole on reload. */
export interface FrontOptions {
  readonly handler: HttpHandler;
  readonly timeouts: FrontTimeouts;
  readonly limits: HeadLimits;
  /** Called for every request the front end answered itself (for the access log). */
  readonly onRefused?: (r: RefusedRequest) => void;
  /** The client spoke HTTP/2 with prior knowledge: the connection is handed over. */
  readonly onHttp2?: (stream: ByteStream, buffered: Uint8Array) => void;
  /** A handler threw (it should not): logged by the owner; the client gets a 500. */
  readonly onHandlerError?: (err: unknown) => void;
}

/** Where a connection reads its current options (a listener swaps `options` on reload). */
export interface OptionsSource {
  readonly options: FrontOptions;
}

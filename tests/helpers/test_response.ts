/**
 * Test helper: calls a handler with a hand-built `HttpRequest` and reads its `HttpResponse` the
 * way the front end would (a `BodySource` chunk by chunk, each copied before the next read),
 * checking the response contract on the way: no framing fields in the header list, and a
 * `BodySource` that delivers exactly the `length` it announced.
 *
 * @module
 */

import { concat } from "./bytes.ts";
import { testRequest, type TestRequestInit } from "./test_request.ts";
import type { BodySource, HttpHandler, HttpResponse } from "../../src/http1/types.ts";

const FRAMING = new Set(["content-length", "transfer-encoding", "connection"]);

/** A response read whole. */
export interface ReadResponse {
  readonly res: HttpResponse;
  /** The body bytes (empty for none). */
  readonly body: Uint8Array;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** The value of the first header field `name` (any case), or null. */
  header(name: string): string | null;
  /** Every header field as an object of lower-case names (the last one wins). */
  fields(): Record<string, string>;
}

/** All bytes of a body; a source is read to its end, copying each chunk. */
export async function readBody(body: Uint8Array | BodySource | null): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const parts: Uint8Array[] = [];
  for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) {
    parts.push(chunk.slice());
  }
  return concat(parts);
}

/** The first header field `name` (any case) of `res`, or null. */
export function headerOf(res: HttpResponse, name: string): string | null {
  const n = name.toLowerCase();
  for (const [k, v] of res.headers) if (k.toLowerCase() === n) return v;
  return null;
}

/** Calls `handler` with a request built from `init` and reads the response whole. */
export async function call(handler: HttpHandler, init: TestRequestInit): Promise<ReadResponse> {
  const res = await handler(testRequest(init));
  for (const [name] of res.headers) {
    if (FRAMING.has(name.toLowerCase())) {
      throw new Error(`Cannot accept response: it carries the framing field ${name}`);
    }
  }
  const body = await readBody(res.body);
  if (res.body !== null && !(res.body instanceof Uint8Array)) {
    const announced = res.length ?? null;
    if (announced !== null && announced !== body.length) {
      throw new Error(`Cannot accept response: ${body.length} body bytes for length ${announced}`);
    }
  }
  return {
    res,
    body,
    text: new TextDecoder().decode(body),
    header: (name) => headerOf(res, name),
    fields: () => Object.fromEntries(res.headers.map(([k, v]) => [k.toLowerCase(), v])),
  };
}

/**
 * The one failure type of the HTTP/1.1 front end's parsers: a client error that the front end
 * answers with `status` and then closes the connection.
 *
 * @module
 */

/** Options of an {@link HttpError}. */
export interface HttpErrorOptions {
  /**
   * The request line was the HTTP/2 connection preface's ("PRI * HTTP/2.0"): the connection
   * speaks HTTP/2 with prior knowledge and may be handed to the HTTP/2 bridge instead of being
   * answered. @default false
   */
  http2Preface?: boolean;
}

/** A malformed or unsupported request: answer `status` ("Connection: close") and close. */
export class HttpError extends Error {
  override name = "HttpError";
  /** The status to answer: 400, 431, 501 or 505. */
  readonly status: number;
  /** See {@link HttpErrorOptions.http2Preface}. */
  readonly http2Preface: boolean;

  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message);
    this.status = status;
    this.http2Preface = options.http2Preface ?? false;
  }
}

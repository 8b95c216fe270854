/**
 * The state of the one exchange (request and response) a connection is carrying: how far the
 * request got, the first failure, the streamed body being sent, the abort it listens to. The
 * request writer, the response reader and the connection's deadlines all read it; it is reset
 * by `begin` for each exchange, so a pooled connection carries one for its whole life.
 *
 * @module
 */

import type { BodySource } from "../http1/types.ts";
import type { AbortSource } from "../net/abort_source.ts";
import { UpstreamError } from "./errors.ts";

/** Per-exchange state of one connection. */
export class ExchangeState {
  /** First failure of the exchange; pending reads and writes throw it. */
  failure: UpstreamError | null = null;
  /** Some response byte arrived. */
  gotBytes = false;
  /** Some request byte was handed to the socket. */
  requestSent = false;
  /** The request (head and body) was written completely. */
  sendDone = false;
  /** The request body is a stream still being sent (the reader cannot wait for it). */
  streaming = false;
  /** The final response head was received. */
  headReceived = false;
  /** Interim (1xx) heads read so far. */
  interimHeads = 0;
  /** Bytes after the buffer's start already scanned for the head's end; -1: none yet. */
  headScanned = -1;
  /** The upstream answered early with an error: stop sending the request body. */
  stopSending = false;
  /** Resolves when the send side settled (never rejects). */
  sendSettled: Promise<void> = Promise.resolve();
  /** The streamed request body being sent, to cancel when the exchange ends early. */
  bodySource: BodySource | null = null;
  /** Limit for a streamed body of unknown length. */
  maxBodyLength = Infinity;
  readMs = 30_000;
  writeMs = 30_000;
  #abort: AbortSource | null = null;

  /** Resets for a new exchange and listens to `abort` (calling `onAbort` when it fires). */
  begin(
    readMs: number,
    writeMs: number,
    abort: AbortSource | undefined,
    onAbort: () => void,
  ): void {
    this.failure = null;
    this.gotBytes = false;
    this.requestSent = false;
    this.sendDone = false;
    this.streaming = false;
    this.headReceived = false;
    this.interimHeads = 0;
    this.headScanned = -1;
    this.stopSending = false;
    this.bodySource = null;
    this.maxBodyLength = Infinity;
    this.readMs = readMs;
    this.writeMs = writeMs;
    if (abort !== undefined) {
      this.#abort = abort;
      abort.onAbort(onAbort);
    }
  }

  /** Stops listening to the abort source. */
  end(): void {
    const abort = this.#abort;
    if (abort !== null) {
      abort.onAbort(null);
      this.#abort = null;
    }
  }

  /** Records `err` as the exchange's failure unless one is recorded already. */
  recordFailure(err: UpstreamError): void {
    if (this.failure === null) this.failure = err;
  }

  /** Cancels the streamed request body, if one is being sent. */
  cancelBody(): void {
    const body = this.bodySource;
    if (body !== null) {
      this.bodySource = null;
      body.cancel();
    }
  }
}

/** The failure an abort records. */
export function abortedByClient(): UpstreamError {
  return new UpstreamError("aborted", "Cannot finish upstream request: aborted by the client");
}

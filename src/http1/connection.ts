/**
 * One client connection of bws's own HTTP/1.1 front end: read a request head within the header
 * timeout, hand the request to the handler, write its response (`response_writer.ts`), and loop
 * for the next request while the connection is kept alive. Pipelined requests are answered in
 * order (the next head is only parsed once the current response is written).
 *
 * The connection moves through phases: NEW (header timeout counted from accept), KEEPALIVE
 * (nothing of a next request yet), HEAD (part of a head arrived), BUSY (a request is handled)
 * and LINGER (closing: what the client still sends is read and discarded, so it reads our
 * answer before the connection goes). A client that speaks HTTP/2 with prior knowledge is
 * handed over.
 *
 * Timeouts (`[server.timeouts]`, docs/behaviour.md "Client connections"): header (from accept, or
 * from the first byte of a later request), keep-alive (no byte of a next request), body (longest
 * gap between request body bytes), send (longest stall writing to the client). All of them are
 * deadlines checked by one coarse ticker (`ConnectionIO`, connection_io.ts).
 *
 * While the handler runs, the connection keeps one read pending once the request body is read:
 * it is the next request's first read, and it notices a client that goes away (its request's
 * `signal` then aborts, which ends an upstream exchange still waiting).
 *
 * @module
 */

import { coarseNow, deadlines, TICK_MS } from "../net/deadlines.ts";
import { errorText } from "../log/error_text.ts";
import { ConnectionIO } from "./connection_io.ts";
import { HttpError } from "./errors.ts";
import type { FrontOptions, OptionsSource } from "./front_options.ts";
import { FrontRequest } from "./front_request.ts";
import { fixedResponse } from "./head_bytes.ts";
import { ChunkedBody, LengthBody, type RequestBody } from "./request_body.ts";
import {
  findRequestHeadEnd,
  isHttp2Preface,
  parseRequestHead,
  type RequestHead,
} from "./request_head.ts";
import { writeResponse } from "./response_writer.ts";
import type { ByteStream, HttpResponse, Peer } from "./types.ts";

/** How long a closing connection reads and discards what the client still sends (lingering
 * close), so the kernel does not reset the connection before the client has read our answer. */
const LINGER_MS = 1000;

const INTERNAL_ERROR: HttpResponse = {
  status: 500,
  headers: [["content-type", "text/plain; charset=utf-8"]],
  body: new TextEncoder().encode("500 Internal Server Error\n"),
  close: true,
};

// Phases: what the connection is waiting for.
const NEW = 0; // a new connection: header timeout counted from accept
const KEEPALIVE = 1; // kept alive, nothing of a next request yet
const HEAD = 2; // part of a head arrived
const BUSY = 3; // a request is being handled
const LINGER = 4; // closing: discarding what the client still sends

/** Runs one connection to its end. Resolves when it is closed or handed over. */
export function serveConnection(
  stream: ByteStream,
  peer: Peer,
  tls: boolean,
  source: OptionsSource,
): ClientConnection {
  const conn = new ClientConnection(stream, peer, tls, source);
  conn.run();
  return conn;
}

/** One client connection. Also the ByteStream handed to an upgrade (WebSocket). */
export class ClientConnection extends ConnectionIO {
  #phase = NEW;

  /** Waiting for a next request with nothing received: safe to close at shutdown. */
  get idle(): boolean {
    return (this.#phase === KEEPALIVE || this.#phase === NEW) && this.start === this.end;
  }

  /** Ends the request in progress if it still waits for an upstream (it is answered as the
   * handler decides, e.g. 503), and finishes the connection after it. */
  cut(): void {
    this.draining = true;
    this.request?.abort(true);
    if (this.idle || this.#phase === LINGER) this.close();
  }

  /** Finishes the request in progress (its response says `Connection: close`), then closes;
   * an idle connection closes now. */
  shutdown(): void {
    this.draining = true;
    if (this.idle || this.#phase === LINGER) this.close();
  }

  // ------------------------------------------------------------------ the loop

  /**
   * Serves requests until the connection ends. One async function for the whole connection:
   * an async call per request would cost ~1 KB of allocation and a promise hop each time.
   */
  async run(): Promise<void> {
    const t = this.source.options.timeouts;
    this.headDeadline = t.headerMs > 0 ? Date.now() + t.headerMs : 0;
    this.arm();
    deadlines.add(this);
    try {
      while (!this.closed && !(this.gone && this.start === this.end)) {
        const opts = this.source.options;
        const limits = opts.limits;
        // ---- the head
        let headEnd = -1;
        /** Where the scan for the head's end resumes (bytes before it were scanned already). */
        let scanned = 0;
        let refused: unknown = null;
        let http2 = false;
        while (true) {
          if (this.start < this.end) {
            if (this.#phase === KEEPALIVE) this.#startHead(opts);
            if (this.#phase === NEW && isHttp2Preface(this.buf, this.start, this.end)) {
              http2 = true;
              break;
            }
            try {
              headEnd = findRequestHeadEnd(
                this.buf,
                this.start,
                this.end,
                limits,
                this.start + scanned,
              );
            } catch (err) {
              refused = err;
              break;
            }
            if (headEnd >= 0) break;
            // A later fill may move the bytes to the buffer's start: remember the offset.
            scanned = this.end - this.start;
          } else if (this.#phase === BUSY && !this.#keepAlive(opts)) break;
          if (this.#phase === BUSY) this.#startHead(opts);
          const ahead = this.ahead;
          if (ahead !== null) {
            // The read-ahead is the next read (awaited here, not through fill(): a promise hop less).
            const before = this.end;
            await ahead;
            this.ahead = null;
            if (this.end > before) continue;
            if (this.gone || this.closed) break;
          }
          // false: EOF, or closed by a timeout (the expiry answered 408 where it had to).
          if (!(await this.fill())) break;
        }
        if (headEnd < 0) {
          if (refused !== null) await this.#refuse(refused, opts);
          else if (http2) await this.#handOverHttp2(opts);
          break;
        }
        let head: RequestHead;
        try {
          head = parseRequestHead(this.buf, this.start, headEnd, limits);
        } catch (err) {
          await this.#refuse(err, opts);
          break;
        }
        this.start = headEnd;
        this.#phase = BUSY;
        this.headDeadline = 0;
        this.arm();

        // ---- the request
        const req = this.#begin(head);
        const body = req.body;
        let res: HttpResponse;
        try {
          // An answer made at once (a cached file, a redirect) is not awaited: a promise hop less.
          const answer = opts.handler(req);
          res = answer instanceof Promise ? await answer : answer;
        } catch (err) {
          opts.onHandlerError?.(err);
          res = INTERNAL_ERROR;
        }
        const keep = await writeResponse(this, req, head, body, res);
        this.request = null;
        if (this.handedOver) break;
        if (!keep) {
          // The client asked to close and sent nothing more: close now, as nginx does (nothing
          // to discard, so no reset can cut the response short). Otherwise linger.
          const clientClosing = !head.keepAlive && (body === null || body.finished) &&
            this.start === this.end;
          if (!clientClosing) await this.#linger();
          break;
        }
      }
    } catch {
      // A socket error or a timeout that closed the socket: the connection ends.
    } finally {
      if (!this.handedOver) {
        await this.#finish();
        this.recycleBuffers();
      }
    }
  }

  /** The request of a parsed head, its body reader, and the read-ahead when it has no body. */
  #begin(head: RequestHead): FrontRequest {
    const req = new FrontRequest(this, head);
    this.request = req;
    this.responseStarted = false;
    this.expect100 = head.expectContinue && head.version === "1.1";
    let body: RequestBody | null = null;
    if (head.chunked) body = new ChunkedBody(this);
    else if (head.contentLength !== null && head.contentLength > 0) {
      body = new LengthBody(this, head.contentLength);
    }
    req.body = body;
    if (body !== null) this.hadBody = true;
    if (body === null && head.upgrade === null) this.readAhead();
    return req;
  }

  /** A response was written and nothing of a next request is here: wait for one (keep-alive
   * timeout); false when the connection is draining. */
  #keepAlive(opts: FrontOptions): boolean {
    this.#phase = KEEPALIVE;
    this.releaseIdleBuffers();
    const ka = opts.timeouts.keepAliveMs;
    // Coarse clock + a tick: never early, and no clock read per request.
    this.headDeadline = ka > 0 ? coarseNow() + ka + TICK_MS : 0;
    this.arm();
    return !this.draining;
  }

  /** A kept-alive connection received the first byte of its next request. */
  #startHead(opts: FrontOptions): void {
    this.#phase = HEAD;
    const ms = opts.timeouts.headerMs;
    this.headDeadline = ms > 0 ? coarseNow() + ms + TICK_MS : 0;
    this.arm();
  }

  /** Answers a malformed request (or one the limits refuse) and ends the connection. */
  async #refuse(err: unknown, opts: FrontOptions): Promise<void> {
    const status = err instanceof HttpError ? err.status : 400;
    const detail = errorText(err);
    const time = Date.now();
    const started = performance.now();
    const answer = fixedResponse(status);
    try {
      this.sendDeadline = this.deadlineIn(opts.timeouts.sendMs);
      this.arm();
      await this.writeAll(answer.bytes);
    } catch {
      // the client is gone: nothing to answer
    }
    this.#reportRefused(
      opts,
      status,
      detail,
      this.#requestLine(),
      time,
      performance.now() - started,
      answer.bodyLength,
    );
    await this.#linger();
  }

  /** Tells `onRefused` about an answer given before a handler had the request. */
  #reportRefused(
    opts: FrontOptions,
    status: number,
    detail: string,
    line: readonly string[],
    time: number,
    durationMs: number,
    bytes: number,
  ): void {
    opts.onRefused?.({
      status,
      detail,
      peer: this.peer,
      method: line[0],
      target: line[1],
      time,
      durationMs,
      bytes,
    });
  }

  /** Method and target of the head in the buffer, as far as they look sane (for the log). */
  #requestLine(): [string, string] {
    const buf = this.buf;
    const end = Math.min(this.end, this.start + 2048);
    let sp1 = -1;
    let sp2 = -1;
    for (let i = this.start; i < end; i++) {
      const c = buf[i];
      if (c === 13 || c === 10) break;
      if (c < 32 || c > 126) return ["", ""];
      if (c === 32) {
        if (sp1 < 0) sp1 = i;
        else if (sp2 < 0) sp2 = i;
      }
    }
    if (sp1 <= this.start || sp2 < 0) return ["", ""];
    const dec = new TextDecoder();
    return [dec.decode(buf.subarray(this.start, sp1)), dec.decode(buf.subarray(sp1 + 1, sp2))];
  }

  async #handOverHttp2(opts: FrontOptions): Promise<void> {
    if (opts.onHttp2 === undefined) {
      await this.#refuse(new HttpError(505, "HTTP/2 prior knowledge is not served here"), opts);
      return;
    }
    opts.onHttp2(this, this.handOver());
  }

  // ------------------------------------------------------------------ ending

  /** Lingering close: stop writing, discard what the client still sends for a moment. */
  async #linger(): Promise<void> {
    if (this.closed) return;
    if (this.gone) {
      this.close();
      return;
    }
    this.#phase = LINGER;
    this.headDeadline = Date.now() + LINGER_MS;
    this.bodyDeadline = this.sendDeadline = 0;
    this.arm();
    const s = this.stream as { closeWrite?: () => Promise<void> };
    try {
      await s.closeWrite?.();
    } catch {
      this.close();
      return;
    }
    if (this.ahead !== null) {
      await this.ahead;
      this.ahead = null;
    }
    while (!this.closed && !this.gone) {
      this.start = this.end = 0;
      if (!(await this.fill())) break;
    }
    this.close();
  }

  async #finish(): Promise<void> {
    if (this.ahead !== null) {
      this.close();
      await this.ahead;
      this.ahead = null;
    }
    this.close();
  }

  // ------------------------------------------------------------------ timeouts

  expire(now: number): void {
    if (this.closed) return;
    if (this.sendDeadline !== 0 && now >= this.sendDeadline) {
      // A client that does not read: nothing more can be said to it.
      this.timedOut = 1;
      this.close();
      return;
    }
    if (this.bodyDeadline !== 0 && now >= this.bodyDeadline) {
      this.timedOut = 408;
      this.bodyDeadline = 0;
      if (!this.responseStarted) this.#answerAndClose(408, "request body timeout");
      else this.close();
      return;
    }
    if (this.headDeadline !== 0 && now >= this.headDeadline) {
      this.headDeadline = 0;
      this.timedOut = 408;
      if (this.#phase === HEAD || (this.#phase === NEW && this.end > this.start)) {
        this.#answerAndClose(408, "request head timeout");
      } else {
        this.close(); // idle, keep-alive over, or lingering done: close silently
      }
      return;
    }
    this.arm();
  }

  /** Sends a fixed answer while reads may be pending, then closes. */
  #answerAndClose(status: number, detail: string): void {
    const opts = this.source.options;
    const answer = fixedResponse(status);
    const time = Date.now();
    const line = this.#phase === BUSY && this.request !== null
      ? [this.request.method, this.request.target]
      : this.#requestLine();
    this.responseStarted = true;
    this.answered = true;
    this.#phase = LINGER;
    const t = setTimeout(() => this.close(), 1000);
    this.stream.write(answer.bytes).then(() => {}, () => {}).finally(() => {
      clearTimeout(t);
      this.close();
    });
    if (this.request === null) {
      // A request in progress is logged by its handler (its body read fails with 408).
      this.#reportRefused(opts, status, detail, line, time, 0, answer.bodyLength);
    }
  }
}

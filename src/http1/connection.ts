/**
 * One client connection of bws's own HTTP/1.1 front end: read a request head within the header
 * timeout, hand the request to the handler, write its response (framing chosen here), and loop
 * for the next request while the connection is kept alive. Pipelined requests are answered in
 * order (the next head is only parsed once the current response is written).
 *
 * Timeouts (`[server.timeouts]`, docs/behaviour.md "Client connections"): header (from accept, or
 * from the first byte of a later request), keep-alive (no byte of a next request), body (longest
 * gap between request body bytes), send (longest stall writing to the client). All of them are
 * deadlines checked by one coarse ticker.
 *
 * While the handler runs, the connection keeps one read pending once the request body is read:
 * it is the next request's first read, and it notices a client that goes away (its request's
 * `signal` then aborts, which ends an upstream exchange still waiting).
 *
 * @module
 */

import { coarseNow, deadlines, TICK_MS, type Timed } from "../net/deadlines.ts";
import { HttpError } from "./errors.ts";
import { encodeHead, fixedResponse, statusLine } from "./head_bytes.ts";
import { ChunkedBody, LengthBody, type RequestBody } from "./request_body.ts";
import {
  findRequestHeadEnd,
  type HeadLimits,
  isHttp2Preface,
  parseRequestHead,
  type RequestHead,
} from "./request_head.ts";
import {
  type BodySource,
  type ByteStream,
  Fields,
  type HttpHandler,
  type HttpRequest,
  type HttpResponse,
  type HttpVersion,
  type Peer,
} from "./types.ts";
import { errorText } from "../log/error_text.ts";

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

/** Head buffer of a new connection; grows for larger heads. */
const HEAD_BUFFER = 4 * 1024;
/** Buffer used while a request body streams (reused; from a small pool). */
const BODY_BUFFER = 64 * 1024;
/** Bodies up to this size go out in the same write as the head. */
const INLINE_BODY = 16 * 1024;
/** How long a closing connection reads and discards what the client still sends (lingering
 * close), so the kernel does not reset the connection before the client has read our answer. */
const LINGER_MS = 1000;

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");
const INTERNAL_ERROR: HttpResponse = {
  status: 500,
  headers: [["content-type", "text/plain; charset=utf-8"]],
  body: new TextEncoder().encode("500 Internal Server Error\n"),
  close: true,
};

const bodyBuffers: Uint8Array[] = [];
const MAX_POOLED = 64;

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
export class ClientConnection implements Timed, ByteStream {
  deadline = 0;
  readonly peer: Peer;
  readonly tls: boolean;
  readonly #stream: ByteStream;
  readonly #source: OptionsSource;
  buf: Uint8Array = new Uint8Array(HEAD_BUFFER);
  start = 0;
  end = 0;
  #headBuffer: Uint8Array = this.buf;
  #wbuf: Uint8Array | null = null;
  #phase = NEW;
  #closed = false;
  /** The client went away (EOF or error on a read). */
  gone = false;
  /** Handed to an upgrade: the loop no longer owns the stream. */
  #handedOver = false;
  /** Stop after the current response (shutdown). */
  #draining = false;
  /** The look-ahead read pending while a request is handled. */
  #ahead: Promise<void> | null = null;
  #request: FrontRequest | null = null;
  #responseStarted = false;
  #expect100 = false;
  #bodyDeadline = 0;
  #sendDeadline = 0;
  #headDeadline = 0;
  #timedOut = 0;
  /** The front end answered the request in progress itself (408): the handler's answer is
   * dropped. */
  #answered = false;
  /** The last body read filled the buffer: use the bigger body buffer from now on. */
  #growNext = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  /** Called once when the connection ends (closed, or its upgrade stream closed). */
  onClose: (() => void) | null = null;

  /** @param initial bytes already read from `stream` (after a PROXY protocol header) */
  constructor(
    stream: ByteStream,
    peer: Peer,
    tls: boolean,
    source: OptionsSource,
    initial?: Uint8Array,
  ) {
    this.#stream = stream;
    this.peer = peer;
    this.tls = tls;
    this.#source = source;
    this.#done = new Promise((r) => (this.#resolveDone = r));
    if (initial !== undefined && initial.length > 0) {
      if (initial.length <= this.buf.length) this.buf.set(initial);
      else this.buf = initial.slice();
      this.end = initial.length;
    }
  }

  /** Settles when the connection is closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Waiting for a next request with nothing received: safe to close at shutdown. */
  get idle(): boolean {
    return (this.#phase === KEEPALIVE || this.#phase === NEW) && this.start === this.end;
  }

  /** Ends the request in progress if it still waits for an upstream (it is answered as the
   * handler decides, e.g. 503), and finishes the connection after it. */
  cut(): void {
    this.#draining = true;
    this.#request?.abort(true);
    if (this.idle || this.#phase === LINGER) this.close();
  }

  /** Finishes the request in progress (its response says `Connection: close`), then closes;
   * an idle connection closes now. */
  shutdown(): void {
    this.#draining = true;
    if (this.idle || this.#phase === LINGER) this.close();
  }

  // ------------------------------------------------------------------ ByteStream (upgrades)

  read(p: Uint8Array): Promise<number | null> {
    return this.#stream.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#stream.write(p);
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.deadline = 0;
    deadlines.delete(this);
    try {
      this.#stream.close();
    } catch {
      // already closed
    }
    // A request the front end answered itself (408 on a stalled body) ends through its body read,
    // which fails with that status: aborting it here would log the client as gone (499).
    if (!this.#answered) this.#request?.abort();
    const cb = this.onClose;
    this.onClose = null;
    cb?.();
    this.#resolveDone();
  }

  // ------------------------------------------------------------------ the loop

  async run(): Promise<void> {
    const t = this.#source.options.timeouts;
    this.#headDeadline = t.headerMs > 0 ? Date.now() + t.headerMs : 0;
    this.#arm();
    deadlines.add(this);
    try {
      while (!this.#closed && (await this.#serveOne()));
    } catch {
      // A socket error or a timeout that closed the socket: the connection ends.
    } finally {
      if (!this.#handedOver) await this.#finish();
    }
  }

  /** Serves one request; false when the connection should end. */
  async #serveOne(): Promise<boolean> {
    if (this.#closed || (this.gone && this.start === this.end)) return false;
    const opts = this.#source.options;
    const limits = opts.limits;
    // ---- the head
    let headEnd = -1;
    /** Where the scan for the head's end resumes (bytes before it were scanned already). */
    let scanned = 0;
    while (true) {
      if (this.start < this.end) {
        if (this.#phase === KEEPALIVE) this.#startHead(opts);
        if (this.#phase === NEW && isHttp2Preface(this.buf, this.start, this.end)) {
          return await this.#handOverHttp2(opts);
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
          await this.#refuse(err, opts);
          return false;
        }
        if (headEnd >= 0) break;
        // A later fill may move the bytes to the buffer's start: remember the offset.
        scanned = this.end - this.start;
      } else if (this.#phase === BUSY) {
        this.#phase = KEEPALIVE;
        this.#releaseBodyBuffer();
        const ka = opts.timeouts.keepAliveMs;
        this.#headDeadline = ka > 0 ? Date.now() + ka : 0;
        this.#arm();
        if (this.#draining) return false;
      }
      if (this.#phase === BUSY) this.#startHead(opts);
      if (!(await this.#fill())) {
        // EOF, or closed by a timeout (the expiry answered 408 where it had to).
        return false;
      }
    }
    let head: RequestHead;
    try {
      head = parseRequestHead(this.buf, this.start, headEnd, limits);
    } catch (err) {
      await this.#refuse(err, opts);
      return false;
    }
    this.start = headEnd;
    this.#phase = BUSY;
    this.#headDeadline = 0;
    this.#arm();

    // ---- the request
    const req = new FrontRequest(this, head);
    this.#request = req;
    this.#responseStarted = false;
    this.#expect100 = head.expectContinue && head.version === "1.1";
    let body: RequestBody | null = null;
    if (head.chunked) body = new ChunkedBody(this);
    else if (head.contentLength !== null && head.contentLength > 0) {
      body = new LengthBody(this, head.contentLength);
    }
    req.body = body;
    if (body === null && head.upgrade === null) this.#readAhead();

    let res: HttpResponse;
    try {
      res = await opts.handler(req);
    } catch (err) {
      opts.onHandlerError?.(err);
      res = INTERNAL_ERROR;
    }
    const keep = await this.#respond(req, head, body, res);
    this.#request = null;
    if (this.#handedOver) return false;
    if (!keep) {
      await this.#linger();
      return false;
    }
    return true;
  }

  /** A kept-alive connection received the first byte of its next request. */
  #startHead(opts: FrontOptions): void {
    this.#phase = HEAD;
    const ms = opts.timeouts.headerMs;
    this.#headDeadline = ms > 0 ? Date.now() + ms : 0;
    this.#arm();
  }

  /** Answers a malformed request (or one the limits refuse) and ends the connection. */
  async #refuse(err: unknown, opts: FrontOptions): Promise<void> {
    const status = err instanceof HttpError ? err.status : 400;
    const detail = errorText(err);
    const time = Date.now();
    const started = performance.now();
    const answer = fixedResponse(status);
    try {
      this.#sendDeadline = this.#deadlineIn(opts.timeouts.sendMs);
      this.#arm();
      await this.#writeAll(answer.bytes);
    } catch {
      // the client is gone: nothing to answer
    }
    const line = this.#requestLine();
    opts.onRefused?.({
      status,
      detail,
      peer: this.peer,
      method: line[0],
      target: line[1],
      time,
      durationMs: performance.now() - started,
      bytes: answer.bodyLength,
    });
    await this.#linger();
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

  async #handOverHttp2(opts: FrontOptions): Promise<boolean> {
    if (opts.onHttp2 === undefined) {
      await this.#refuse(new HttpError(505, "HTTP/2 prior knowledge is not served here"), opts);
      return false;
    }
    this.#handedOver = true;
    this.deadline = 0;
    deadlines.delete(this);
    opts.onHttp2(this, this.buf.slice(this.start, this.end));
    return false;
  }

  // ------------------------------------------------------------------ reading

  /** Reads more bytes into `buf[end, …)` (or waits for the read-ahead); false at EOF. */
  async #fill(): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#ahead !== null) {
      const before = this.end;
      await this.#ahead;
      this.#ahead = null;
      if (this.end > before) return true;
      if (this.gone || this.#closed) return false;
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf.subarray(0, this.end));
        if (this.buf !== this.#headBuffer) this.#releaseBodyBuffer();
        this.buf = bigger;
      }
    }
    const space = this.buf.length - this.end;
    let n: number | null;
    try {
      n = await this.#stream.read(this.buf.subarray(this.end));
    } catch {
      n = null;
    }
    if (n === null) {
      // A read ended by our own close is not the client going away.
      if (!this.#closed) this.gone = true;
      return false;
    }
    this.end += n;
    if (n === space && this.buf === this.#headBuffer) this.#growNext = true;
    return true;
  }

  /** BodyHost: reads more request body bytes (100-continue first, body timeout). */
  async fillBody(): Promise<boolean> {
    const opts = this.#source.options;
    if (this.#expect100) {
      this.#expect100 = false;
      if (!this.#responseStarted) {
        try {
          await this.#writeAll(CONTINUE);
        } catch {
          throw new HttpError(499, "Cannot read request body: the client closed the connection");
        }
      }
    }
    if (
      this.#growNext && this.#ahead === null && this.start === this.end &&
      this.buf === this.#headBuffer
    ) {
      // A fast upload: read it in bigger pieces (slow ones keep the small buffer).
      this.start = this.end = 0;
      this.buf = bodyBuffers.pop() ?? new Uint8Array(BODY_BUFFER);
    }
    this.#growNext = false;
    this.#bodyDeadline = this.#deadlineIn(opts.timeouts.bodyMs);
    this.#arm();
    let ok: boolean;
    try {
      ok = await this.#fill();
    } finally {
      this.#bodyDeadline = 0;
      this.#arm();
    }
    if (this.#timedOut === 408) {
      throw new HttpError(408, "Cannot read request body: no data within the body timeout");
    }
    if (!ok) {
      throw new HttpError(499, "Cannot read request body: the client closed the connection");
    }
    return true;
  }

  /** BodyHost: the body was read to its end. */
  bodyEnded(): void {
    this.#readAhead();
  }

  /** Starts the next request's first read while the current one is handled. */
  #readAhead(): void {
    if (this.#ahead !== null || this.#closed) return;
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) return; // full: read again after the response
    this.#ahead = this.#stream.read(this.buf.subarray(this.end)).then(
      (n) => {
        if (n === null) this.#clientGone();
        else this.end += n;
      },
      () => this.#clientGone(),
    );
  }

  #clientGone(): void {
    this.gone = true;
    this.#request?.abort();
  }

  /** Back to the small head buffer once a connection goes idle (its body buffer to the pool:
   * the request it served is over, nothing holds a view into it any more). */
  #releaseBodyBuffer(): void {
    const b = this.buf;
    if (b === this.#headBuffer) return;
    if (this.start === this.end && this.#ahead === null) {
      if (b.length === BODY_BUFFER && bodyBuffers.length < MAX_POOLED) bodyBuffers.push(b);
      this.buf = this.#headBuffer;
      this.start = this.end = 0;
    }
  }

  // ------------------------------------------------------------------ writing

  /** Writes all of `data` within the send timeout per write. */
  async #writeAll(data: Uint8Array): Promise<void> {
    const sendMs = this.#source.options.timeouts.sendMs;
    let off = 0;
    while (off < data.length) {
      if (this.#closed) throw new Error("Cannot write: connection closed");
      this.#sendDeadline = sendMs > 0 ? coarseNow() + sendMs + TICK_MS : 0;
      this.#arm();
      try {
        off += await this.#stream.write(off === 0 ? data : data.subarray(off));
      } finally {
        this.#sendDeadline = 0;
        this.#arm();
      }
    }
  }

  #writeBuffer(size: number): Uint8Array {
    let w = this.#wbuf;
    if (w === null || w.length < size) {
      w = new Uint8Array(Math.max(size, w === null ? 1024 : w.length * 2));
      this.#wbuf = w;
    }
    return w;
  }

  /** Writes the response; resolves whether the connection stays open for another request. */
  async #respond(
    req: FrontRequest,
    head: RequestHead,
    body: RequestBody | null,
    res: HttpResponse,
  ): Promise<boolean> {
    const status = res.status;
    const src = res.body;
    if (this.#answered || this.#closed) {
      if (src !== null && !(src instanceof Uint8Array)) src.cancel();
      try {
        res.done?.(0, new Error("Cannot send the response: the connection was closed"));
      } catch {
        // ignore
      }
      return false;
    }
    if (status === 101 && res.upgrade !== undefined) return await this.#upgrade(res);
    const noBody = req.method === "HEAD" || status < 200 || status === 204 || status === 304;
    let keep = head.keepAlive && res.close !== true && !this.#draining && !this.gone;
    if (keep && body !== null && !body.finished && (!body.drainable() || this.#expect100)) {
      keep = false;
    }
    let h = statusLine(status);
    const hs = res.headers;
    for (let i = 0; i < hs.length; i++) h += hs[i][0] + ": " + hs[i][1] + "\r\n";
    // 0 none, 1 bytes, 2 source with length, 3 chunked source, 4 close-delimited source
    let mode = 0;
    let length = 0;
    if (noBody) {
      if (status >= 200 && status !== 204) {
        const len = src instanceof Uint8Array ? src.length : res.length;
        if (len !== undefined && len !== null) h += "content-length: " + len + "\r\n";
      }
      if (src !== null && !(src instanceof Uint8Array)) src.cancel();
    } else if (src === null) {
      h += "content-length: 0\r\n";
    } else if (src instanceof Uint8Array) {
      mode = 1;
      length = src.length;
      h += "content-length: " + length + "\r\n";
    } else if (res.length !== undefined && res.length !== null) {
      mode = 2;
      length = res.length;
      h += "content-length: " + length + "\r\n";
    } else if (head.version === "1.1") {
      mode = 3;
      h += "transfer-encoding: chunked\r\n";
    } else {
      mode = 4;
      keep = false;
    }
    if (!keep) h += "connection: close\r\n";
    else if (head.version === "1.0") h += "connection: keep-alive\r\n";
    h += "\r\n";

    let sent = 0;
    let error: unknown = null;
    this.#responseStarted = true;
    try {
      const inline = mode === 1 && length <= INLINE_BODY;
      const w = this.#writeBuffer(h.length + (inline ? length : 0));
      let n = encodeHead(h, w);
      if (inline) {
        w.set(src as Uint8Array, n);
        n += length;
        sent = length;
      }
      await this.#writeAll(w.subarray(0, n));
      if (mode === 1 && !inline) {
        await this.#writeAll(src as Uint8Array);
        sent = length;
      } else if (mode >= 2) {
        sent = await this.#pump(src as BodySource, mode === 3);
        if (mode === 2 && sent !== length) {
          throw new Error(`Cannot send response body: ${sent} bytes for Content-Length ${length}`);
        }
      }
    } catch (err) {
      error = err;
      keep = false;
      if (mode >= 2) (src as BodySource).cancel(err);
      this.close();
    }
    if (keep && body !== null && !body.finished && !(await this.#drain(body))) keep = false;
    try {
      res.done?.(sent, error);
    } catch {
      // a done callback must not end the connection loop
    }
    return keep && !this.#closed;
  }

  /** Copies a streamed body to the client; resolves with the body bytes sent. */
  async #pump(src: BodySource, chunked: boolean): Promise<number> {
    let sent = 0;
    while (true) {
      const chunk = await src.read();
      if (chunk === null) break;
      if (chunk.length === 0) continue;
      if (chunked) {
        const size = chunk.length.toString(16);
        const w = this.#writeBuffer(size.length + chunk.length + 4);
        let p = 0;
        for (let i = 0; i < size.length; i++) w[p++] = size.charCodeAt(i);
        w[p++] = 13;
        w[p++] = 10;
        w.set(chunk, p);
        p += chunk.length;
        w[p++] = 13;
        w[p++] = 10;
        await this.#writeAll(w.subarray(0, p));
      } else {
        await this.#writeAll(chunk);
      }
      sent += chunk.length;
    }
    if (chunked) await this.#writeAll(LAST_CHUNK);
    return sent;
  }

  /** Reads and discards what is left of a request body; false when it cannot be done. */
  async #drain(body: RequestBody): Promise<boolean> {
    if (!body.drainable()) return false;
    try {
      while ((await body.read()) !== null) {
        if (!body.drainable()) return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Writes a 101 head and hands the stream to the upgrade. */
  async #upgrade(res: HttpResponse): Promise<boolean> {
    let h = statusLine(101);
    for (const [name, value] of res.headers) h += name + ": " + value + "\r\n";
    h += "\r\n";
    const w = this.#writeBuffer(h.length);
    const n = encodeHead(h, w);
    try {
      await this.#writeAll(w.subarray(0, n));
    } catch (err) {
      res.done?.(0, err);
      this.close();
      return false;
    }
    this.#handedOver = true;
    this.deadline = 0;
    deadlines.delete(this);
    const buffered = this.buf.slice(this.start, this.end);
    this.start = this.end = 0;
    res.done?.(0, null);
    res.upgrade!(this, buffered);
    return false;
  }

  // ------------------------------------------------------------------ ending

  /** Lingering close: stop writing, discard what the client still sends for a moment. */
  async #linger(): Promise<void> {
    if (this.#closed) return;
    if (this.gone) {
      this.close();
      return;
    }
    this.#phase = LINGER;
    this.#headDeadline = Date.now() + LINGER_MS;
    this.#bodyDeadline = this.#sendDeadline = 0;
    this.#arm();
    const s = this.#stream as { closeWrite?: () => Promise<void> };
    try {
      await s.closeWrite?.();
    } catch {
      this.close();
      return;
    }
    if (this.#ahead !== null) {
      await this.#ahead;
      this.#ahead = null;
    }
    while (!this.#closed && !this.gone) {
      this.start = this.end = 0;
      if (!(await this.#fill())) break;
    }
    this.close();
  }

  async #finish(): Promise<void> {
    if (this.#ahead !== null) {
      this.close();
      await this.#ahead;
      this.#ahead = null;
    }
    this.close();
  }

  // ------------------------------------------------------------------ deadlines

  #deadlineIn(ms: number): number {
    return ms > 0 ? Date.now() + ms : 0;
  }

  /** Sets `deadline` to the earliest of the phase deadlines. */
  #arm(): void {
    let d = this.#headDeadline;
    const b = this.#bodyDeadline;
    const s = this.#sendDeadline;
    if (b !== 0 && (d === 0 || b < d)) d = b;
    if (s !== 0 && (d === 0 || s < d)) d = s;
    this.deadline = d;
  }

  expire(now: number): void {
    if (this.#closed) return;
    if (this.#sendDeadline !== 0 && now >= this.#sendDeadline) {
      // A client that does not read: nothing more can be said to it.
      this.#timedOut = 1;
      this.close();
      return;
    }
    if (this.#bodyDeadline !== 0 && now >= this.#bodyDeadline) {
      this.#timedOut = 408;
      this.#bodyDeadline = 0;
      if (!this.#responseStarted) this.#answerAndClose(408, "request body timeout");
      else this.close();
      return;
    }
    if (this.#headDeadline !== 0 && now >= this.#headDeadline) {
      this.#headDeadline = 0;
      this.#timedOut = 408;
      if (this.#phase === HEAD || (this.#phase === NEW && this.end > this.start)) {
        this.#answerAndClose(408, "request head timeout");
      } else {
        this.close(); // idle, keep-alive over, or lingering done: close silently
      }
      return;
    }
    this.#arm();
  }

  /** Sends a fixed answer while reads may be pending, then closes. */
  #answerAndClose(status: number, detail: string): void {
    const opts = this.#source.options;
    const answer = fixedResponse(status);
    const time = Date.now();
    const line = this.#phase === BUSY && this.#request !== null
      ? [this.#request.method, this.#request.target]
      : this.#requestLine();
    this.#responseStarted = true;
    this.#answered = true;
    this.#phase = LINGER;
    const t = setTimeout(() => this.close(), 1000);
    this.#stream.write(answer.bytes).then(() => {}, () => {}).finally(() => {
      clearTimeout(t);
      this.close();
    });
    if (this.#request === null) {
      // A request in progress is logged by its handler (its body read fails with 408).
      opts.onRefused?.({
        status,
        detail,
        peer: this.peer,
        method: line[0],
        target: line[1],
        time,
        durationMs: 0,
        bytes: answer.bodyLength,
      });
    }
  }
}

/** The request object handed to handlers (fields filled from the parsed head). */
class FrontRequest implements HttpRequest {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly query: string;
  readonly version: HttpVersion;
  readonly headers: Fields;
  readonly host: string | null;
  body: RequestBody | null = null;
  readonly bodyLength: number | null;
  readonly peer: Peer;
  readonly tls: boolean;
  readonly time: number;
  readonly started: number;
  readonly #conn: ClientConnection;
  #ctl: AbortController | null = null;
  #abortFn: (() => void) | null = null;
  #cut = false;

  constructor(conn: ClientConnection, head: RequestHead) {
    this.#conn = conn;
    this.method = head.method;
    this.target = head.target;
    this.path = head.path;
    this.query = head.query;
    this.version = head.version;
    this.headers = new Fields(head.headers);
    this.host = head.host;
    this.bodyLength = head.chunked ? null : head.contentLength;
    this.peer = conn.peer;
    this.tls = conn.tls;
    this.time = Date.now();
    this.started = performance.now();
  }

  get signal(): AbortSignal {
    if (this.#ctl === null) {
      this.#ctl = new AbortController();
      if (this.#conn.gone) this.#ctl.abort();
    }
    return this.#ctl.signal;
  }

  get clientGone(): boolean {
    return this.#conn.gone;
  }

  get aborted(): boolean {
    return this.#conn.gone || this.#cut;
  }

  onAbort(fn: (() => void) | null): void {
    if (fn !== null && (this.#conn.gone || this.#cut)) {
      this.#abortFn = null;
      fn();
      return;
    }
    this.#abortFn = fn;
  }

  /** The client went away, or the request was cut (its listener's grace period is over). */
  abort(cut = false): void {
    if (cut) this.#cut = true;
    const fn = this.#abortFn;
    this.#abortFn = null;
    fn?.();
    this.#ctl?.abort();
  }
}

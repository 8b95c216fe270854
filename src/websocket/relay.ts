/**
 * Relays a client WebSocket to an upstream WebSocket: connect upstream first (so a refusal is a
 * plain 502), then upgrade the client with the upstream's chosen subprotocol and pass messages
 * and close codes both ways with bounded buffering.
 *
 * @module
 */

import { clientCloseCode, upstreamClose } from "./close_codes.ts";
import { type RelayedPair, WebSocketRegistry } from "./websocket_registry.ts";

export { WebSocketRegistry };

/** What `onClose` reports about a finished pair. */
export interface RelayCloseInfo {
  /** The first close code seen: from the side that closed first, or the one the relay chose. */
  code: number;
  reason: string;
  /** Messages and bytes client → upstream. Bytes of text count UTF-16 code units. */
  messagesIn: number;
  bytesIn: number;
  /** Messages and bytes upstream → client. */
  messagesOut: number;
  bytesOut: number;
  durationMs: number;
}

/** How one upgrade request is relayed. */
export interface RelayOptions {
  /** Full upstream URL: ws:// or wss://host:port/path?query. */
  upstreamUrl: string;
  /** Headers to send upstream. Host is sent as given (else the URL's host:port); Connection,
   * Upgrade and Sec-WebSocket-* are set by the WebSocket client itself and are skipped; Deno
   * prefixes User-Agent with its own. */
  headers: Headers;
  /** Seconds to wait for the upstream handshake; 0 = no limit. */
  connectTimeout: number;
  /** Bytes; when `bufferedAmount` towards one side exceeds this, that side is closed (1009 to
   * a client, 1000 with a reason to an upstream) and the other told. @default 16 MiB */
  maxBuffered: number;
  /** Seconds without messages either way before both sides are closed (1001); 0 = off. */
  idleTimeout: number;
  /** Seconds without a frame from the client before it is pinged (and closed 1001 when no pong
   * comes in half that time); 0 = off. */
  pingInterval: number;
  registry: WebSocketRegistry;
  /** Called once the client side is open (the pair is relaying). */
  onOpen?(): void;
  /** Called once the pair is fully closed; only when `onOpen` was called. */
  onClose?(info: RelayCloseInfo): void;
  /** Called when the upstream could not be reached or refused the upgrade. */
  onUpstreamFailure?(err: Error): void;
}

/** How long a closing side may take to confirm before the pair is forgotten anyway. */
const CLOSE_GRACE_MS = 5000;

/** Headers the WebSocket client builds itself. */
const OWN_HEADERS = new Set(["connection", "upgrade", "content-length"]);

let hostClient: Deno.HttpClient | undefined;

/**
 * The client every upstream WebSocket connects through. Deno's WebSocket replaces a Host header
 * with the URL's host:port unless its `client` was created with `allowHost`. TLS still checks
 * (and SNI names) the URL's host, with the default roots plus `DENO_CERT`.
 */
function upstreamClient(): Deno.HttpClient {
  return hostClient ??= Deno.createHttpClient({ allowHost: true });
}

/** Whether `req` asks for a WebSocket: GET with `Upgrade: websocket` (any case). */
export function isWebSocketUpgrade(req: Request): boolean {
  if (req.method !== "GET") return false;
  const upgrade = req.headers.get("upgrade");
  if (upgrade === null) return false;
  for (const token of upgrade.split(",")) {
    if (token.trim().toLowerCase() === "websocket") return true;
  }
  return false;
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function offeredProtocols(req: Request): string[] {
  const header = req.headers.get("sec-websocket-protocol");
  if (header === null) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

function upstreamHeaders(headers: Headers): Headers {
  const out = new Headers();
  for (const [name, value] of headers) {
    if (!OWN_HEADERS.has(name) && !name.startsWith("sec-websocket-")) out.append(name, value);
  }
  return out;
}

type Message = string | ArrayBuffer;

interface Connected {
  socket: WebSocket;
  /** Messages that arrived before the client side was open. */
  pending: Message[];
}

function connectUpstream(req: Request, opts: RelayOptions): Promise<Connected> {
  const url = opts.upstreamUrl;
  return new Promise((resolve, reject) => {
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, {
        headers: upstreamHeaders(opts.headers),
        protocols: offeredProtocols(req),
        client: upstreamClient(),
      });
    } catch (err) {
      reject(new Error(`Cannot connect to "${url}": ${(err as Error).message}`));
      return;
    }
    socket.binaryType = "arraybuffer";
    const pending: Message[] = [];
    socket.onmessage = (e) => pending.push(e.data);
    let detail = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`Cannot connect to "${url}": ${why}`));
    };
    const timer = opts.connectTimeout > 0
      ? setTimeout(() => {
        fail(`no handshake within ${opts.connectTimeout} s`);
        socket.close();
      }, opts.connectTimeout * 1000)
      : undefined;
    socket.onerror = (e) => {
      detail = (e as ErrorEvent).message ?? "error";
    };
    socket.onclose = (e) => fail(detail || `closed with ${e.code} during the handshake`);
    socket.onopen = () => {
      clearTimeout(timer);
      resolve({ socket, pending });
    };
  });
}

/** A Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 4.1): 22 characters and "==". */
const KEY_SHAPE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Connects upstream first (offering the client's Sec-WebSocket-Protocol list), then upgrades the
 * client with the upstream's chosen protocol and relays. Returns the 101 response for
 * Deno.serve; 400 for a request that is not a valid upgrade (Deno.upgradeWebSocket takes any
 * key); 426 with `Sec-WebSocket-Version: 13` for another protocol version (RFC 6455 4.4); 502
 * ("502 Bad Gateway", no upstream address) when the upstream cannot be reached or refuses, before
 * the client is upgraded. The refusals come before any upstream connection is made.
 */
export async function relayWebSocket(req: Request, opts: RelayOptions): Promise<Response> {
  const key = req.headers.get("sec-websocket-key");
  if (!isWebSocketUpgrade(req) || key === null || !KEY_SHAPE.test(key.trim())) {
    return plain(400, "400 Bad Request");
  }
  if (req.headers.get("sec-websocket-version")?.trim() !== "13") {
    const res = plain(426, "426 Upgrade Required");
    res.headers.set("sec-websocket-version", "13");
    return res;
  }
  let connected: Connected;
  try {
    connected = await connectUpstream(req, opts);
  } catch (err) {
    opts.onUpstreamFailure?.(err as Error);
    return plain(502, "502 Bad Gateway");
  }
  const upstream = connected.socket;
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(req, {
      protocol: upstream.protocol || undefined,
      idleTimeout: opts.pingInterval,
    });
  } catch {
    upstream.onclose = null;
    upstream.close(1000, "client upgrade failed");
    return plain(400, "400 Bad Request");
  }
  new Pair(upgraded.socket, upstream, connected.pending, opts);
  return upgraded.response;
}

/** One client socket joined to one upstream socket. */
class Pair implements RelayedPair {
  readonly done: Promise<void>;
  #resolveDone!: () => void;
  #client: WebSocket;
  #upstream: WebSocket;
  #opts: RelayOptions;
  #startedAt = Date.now();
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  /** Upstream → client relaying is on (client open, not closing). */
  #toClient = false;
  /** Client → upstream relaying is on (not closing). */
  #toUpstream = true;
  #closing = false;
  #opened = false;
  #finished = false;
  #clientClosed = false;
  #upstreamClosed = false;
  /** A close for the client decided before the client side was open. */
  #clientCloseOnOpen: [number, string] | null = null;
  #code = 0;
  #reason = "";
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(client: WebSocket, upstream: WebSocket, pending: Message[], opts: RelayOptions) {
    this.#client = client;
    this.#upstream = upstream;
    this.#opts = opts;
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    const max = opts.maxBuffered;
    client.binaryType = "arraybuffer";

    upstream.onmessage = (e) => {
      const data: Message = e.data;
      if (this.#toClient) {
        // Defensive: a throwing send inside an event handler would end the whole process.
        try {
          client.send(data);
        } catch {
          this.#toClient = false;
        }
        if (client.bufferedAmount > max) this.#overflow(true);
      } else if (!this.#closing) {
        pending.push(data);
        // Only before the client is open, so all of #bytesOut is waiting here.
        if (this.#bytesOut > max) this.#overflow(true);
      }
      this.#messagesOut++;
      this.#bytesOut += typeof data === "string" ? data.length : data.byteLength;
    };
    client.onmessage = (e) => {
      const data: Message = e.data;
      const size = typeof data === "string" ? data.length : data.byteLength;
      if (size > max) {
        // One message over the bound could never be buffered: too big (1009), not a slow
        // upstream. Deno has already assembled it; it is dropped here.
        this.#tooBig();
        return;
      }
      if (this.#toUpstream) {
        try {
          upstream.send(data);
        } catch {
          this.#toUpstream = false;
        }
        if (upstream.bufferedAmount > max) this.#overflow(false);
      }
      this.#messagesIn++;
      this.#bytesIn += size;
    };
    client.onopen = () => {
      this.#opened = true;
      for (const data of pending) client.send(data);
      pending.length = 0;
      opts.onOpen?.();
      if (this.#clientCloseOnOpen !== null) {
        this.#closeClient(...this.#clientCloseOnOpen);
      } else if (!this.#closing) {
        this.#toClient = true;
        if (client.bufferedAmount > max) this.#overflow(true);
      }
    };
    client.onerror = () => {};
    upstream.onerror = () => {};
    client.onclose = (e) => {
      this.#clientClosed = true;
      this.#record(e.code, e.reason);
      if (!this.#upstreamClosed) this.#startClosing();
      const [code, reason] = upstreamClose(e.code, e.reason);
      this.#closeUpstream(code, reason);
      this.#maybeFinish();
    };
    upstream.onclose = (e) => {
      this.#upstreamClosed = true;
      this.#record(e.code, e.reason);
      if (!this.#clientClosed) this.#startClosing();
      this.#closeClient(clientCloseCode(e.code), e.reason);
      this.#maybeFinish();
    };
    if (opts.idleTimeout > 0) this.#watchIdle(opts.idleTimeout * 1000);
    opts.registry.add(this);
  }

  /** Close both sides: `code` to the client, the nearest sendable code upstream. */
  close(code: number, reason: string): void {
    this.#record(code, reason);
    this.#startClosing();
    this.#closeClient(code, reason);
    const [upCode, upReason] = upstreamClose(code, reason);
    this.#closeUpstream(upCode, upReason);
  }

  /** One side's buffer passed `maxBuffered`: it is not reading. */
  #overflow(clientSide: boolean): void {
    if (clientSide) {
      this.#record(1009, "client not reading");
      this.#startClosing();
      this.#closeClient(1009, "message buffer full");
      this.#closeUpstream(1000, "client not reading");
    } else {
      this.#record(1011, "upstream not reading");
      this.#startClosing();
      this.#closeUpstream(1000, "message buffer full");
      this.#closeClient(1011, "upstream not reading");
    }
  }

  /** The client sent one message larger than `maxBuffered`. */
  #tooBig(): void {
    this.#record(1009, "client message too big");
    this.#startClosing();
    this.#closeClient(1009, "message too big");
    this.#closeUpstream(1000, "client message too big");
  }

  #record(code: number, reason: string): void {
    if (this.#code === 0) {
      this.#code = code;
      this.#reason = reason;
    }
  }

  /** Stops relaying and bounds how long the close handshakes may take. */
  #startClosing(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#toClient = false;
    this.#toUpstream = false;
    clearInterval(this.#idleTimer);
    this.#graceTimer = setTimeout(() => this.#finish(), CLOSE_GRACE_MS);
  }

  #closeClient(code: number, reason: string): void {
    if (this.#clientClosed) return;
    const client = this.#client;
    if (client.readyState === WebSocket.CONNECTING) {
      this.#clientCloseOnOpen ??= [code, reason];
      return;
    }
    try {
      client.close(code, reason);
    } catch {
      client.close(1011);
    }
  }

  #closeUpstream(code: number, reason: string): void {
    if (this.#upstreamClosed) return;
    try {
      this.#upstream.close(code, reason);
    } catch {
      this.#upstream.close(1000);
    }
  }

  #watchIdle(idleMs: number): void {
    // Four ticks per period: no per-message clock reads, closes within 1-1.25 periods.
    let seen = -1;
    let quietTicks = 0;
    this.#idleTimer = setInterval(() => {
      const total = this.#messagesIn + this.#messagesOut;
      if (total !== seen) {
        seen = total;
        quietTicks = 0;
      } else if (++quietTicks >= 4) {
        this.close(1001, "idle timeout");
      }
    }, idleMs / 4);
  }

  #maybeFinish(): void {
    if (this.#clientClosed && this.#upstreamClosed) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#idleTimer);
    clearTimeout(this.#graceTimer);
    this.#opts.registry.delete(this);
    if (this.#opened) {
      this.#opts.onClose?.({
        code: this.#code,
        reason: this.#reason,
        messagesIn: this.#messagesIn,
        messagesOut: this.#messagesOut,
        bytesIn: this.#bytesIn,
        bytesOut: this.#bytesOut,
        durationMs: Date.now() - this.#startedAt,
      });
    }
    this.#resolveDone();
  }
}

/**
 * A raw HTTP/1.1 client for end-to-end tests that need what fetch cannot do: a chosen source
 * address on loopback (127.0.0.0/8 is all local on Linux), bytes before the request (a PROXY
 * protocol header), pipelined requests in one write, and TLS started after such bytes.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";

/** One parsed response. */
export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** What one connection got. */
export interface RawResult {
  readonly responses: RawResponse[];
  /** The server closed the connection (before the timeout). */
  readonly closed: boolean;
  /** Bytes received that did not make a whole response. */
  readonly leftover: string;
}

/** Options of {@link rawExchange}. */
export interface RawOptions {
  readonly port: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** Source address to connect from (e.g. "127.0.0.7"). */
  readonly localAddress?: string;
  /** Sent first, as written (e.g. a PROXY header). */
  readonly prefix?: Uint8Array;
  /** Sent after `prefix` in the same write (requests may be pipelined). */
  readonly data?: string | Uint8Array;
  /** Stop once this many responses have arrived. @default 1 */
  readonly responses?: number;
  /** Give up (and report what arrived) after this long. @default 3000 */
  readonly timeoutMs?: number;
  /** Start TLS after `prefix` (then send `data` over it). */
  readonly tls?: { readonly servername: string; readonly ca: string };
}

const enc = new TextEncoder();

/** Connects, sends, reads responses; never rejects for what the server does (closes, resets). */
export function rawExchange(opts: RawOptions): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const want = opts.responses ?? 1;
    let text = "";
    let settled = false;
    let stream: net.Socket | null = null;
    const raw = net.connect({
      host: opts.host ?? "127.0.0.1",
      port: opts.port,
      localAddress: opts.localAddress,
    });
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const { responses, rest } = parseResponses(text);
      stream?.destroy();
      raw.destroy();
      resolve({ responses, closed, leftover: rest });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 3000);
    const attach = (s: net.Socket) => {
      stream = s;
      s.on("data", (b: Uint8Array) => {
        for (let i = 0; i < b.length; i++) text += String.fromCharCode(b[i]);
        if (parseResponses(text).responses.length >= want) finish(false);
      });
      s.on("end", () => finish(true));
      s.on("close", () => finish(true));
      s.on("error", () => finish(true));
    };
    raw.once("error", (err) => {
      if (stream === null && !settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    raw.once("connect", () => {
      if (opts.prefix) raw.write(opts.prefix);
      const data = typeof opts.data === "string" ? enc.encode(opts.data) : opts.data;
      if (opts.tls) {
        const t = tls.connect({ socket: raw, servername: opts.tls.servername, ca: opts.tls.ca });
        attach(t);
        t.once("secureConnect", () => data && t.write(data));
      } else {
        attach(raw);
        if (data) raw.write(data);
      }
    });
  });
}

/** A GET request for pipelining: `GET path HTTP/1.1` with Host and `extra` header lines. */
export function getRequest(path: string, host = "localhost", extra: string[] = []): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra.map((l) => l + "\r\n").join("")}\r\n`;
}

/** Parses as many whole responses (Content-Length or chunked) as `text` holds. */
export function parseResponses(text: string): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (true) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const lines = text.slice(at, end).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    let bodyStart = end + 4;
    let body = "";
    if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
      let p = bodyStart;
      let complete = false;
      while (true) {
        const lineEnd = text.indexOf("\r\n", p);
        if (lineEnd < 0) break;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (size === 0) {
          const trailerEnd = text.indexOf("\r\n", lineEnd + 2);
          if (trailerEnd < 0) break;
          p = trailerEnd + 2;
          complete = true;
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      bodyStart = p;
    } else {
      const length = status === 101 || status === 204 || status === 304
        ? 0
        : Number(headers.get("content-length") ?? 0);
      if (text.length < bodyStart + length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    }
    responses.push({ status, headers, body });
    at = bodyStart;
  }
  return { responses, rest: text.slice(at) };
}

/** A PROXY protocol v1 header line. */
export function proxyV1(
  proto: "TCP4" | "TCP6" | "UNKNOWN",
  src = "",
  dst = "",
  sport = 0,
  dport = 0,
): Uint8Array {
  const line = proto === "UNKNOWN"
    ? "PROXY UNKNOWN\r\n"
    : `PROXY ${proto} ${src} ${dst} ${sport} ${dport}\r\n`;
  return enc.encode(line);
}

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/**
 * A PROXY protocol v2 header: PROXY over TCP for `src`/`dst` (IPv4 or IPv6 text, same family),
 * or LOCAL when `src` is null. `tlv` bytes are appended after the addresses.
 */
export function proxyV2(
  src: { ip: string; port: number } | null,
  dst: { ip: string; port: number } = { ip: "127.0.0.1", port: 80 },
  tlv: Uint8Array = new Uint8Array(0),
): Uint8Array {
  if (src === null) {
    const out = new Uint8Array(16 + tlv.length);
    out.set(V2_SIGNATURE);
    out[12] = 0x20; // v2, LOCAL
    out[13] = 0x00; // UNSPEC
    out[14] = tlv.length >> 8;
    out[15] = tlv.length & 0xff;
    out.set(tlv, 16);
    return out;
  }
  const v6 = src.ip.includes(":");
  const addrBytes = (ip: string) => v6 ? ipv6Bytes(ip) : ip.split(".").map(Number);
  const addrs = [...addrBytes(src.ip), ...addrBytes(dst.ip)];
  const len = addrs.length + 4 + tlv.length;
  const out = new Uint8Array(16 + len);
  out.set(V2_SIGNATURE);
  out[12] = 0x21; // v2, PROXY
  out[13] = v6 ? 0x21 : 0x11; // INET6 or INET, STREAM
  out[14] = len >> 8;
  out[15] = len & 0xff;
  out.set(addrs, 16);
  const p = 16 + addrs.length;
  out.set([src.port >> 8, src.port & 0xff, dst.port >> 8, dst.port & 0xff], p);
  out.set(tlv, p + 4);
  return out;
}

function ipv6Bytes(ip: string): number[] {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, null];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

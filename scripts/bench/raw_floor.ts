/**
 * The raw-front floor for a proxied request, for the benchmark only:
 * `deno run -A scripts/bench/raw_floor.ts <port> <backend port>`.
 *
 * The cheapest HTTP/1.1 proxy Deno can be: `Deno.listen` in front with its own tiny head parsing
 * (head end, request line, Content-Length and Connection), a pool of kept-alive `Deno.connect`
 * sockets behind, and one added request header (X-Forwarded-For). No routing, no other header
 * rewriting, no timeouts, no logging, no chunked bodies; the upstream's response bytes go back
 * as they came (Content-Length responses only). Whatever bws does on top of its own front end
 * costs CPU above this row.
 *
 * @module
 */

const [port, backendPort] = Deno.args.map(Number);
const encoder = new TextEncoder();
const BUFFER = 64 * 1024;
const CR = 13;
const LF = 10;

interface Upstream {
  readonly conn: Deno.TcpConn;
  readonly buf: Uint8Array;
}
const idle: Upstream[] = [];

async function take(): Promise<Upstream> {
  const pooled = idle.pop();
  if (pooled) return pooled;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
  conn.setNoDelay(true);
  return { conn, buf: new Uint8Array(BUFFER) };
}

/** Index just past the blank line ending a head in `buf[from, end)`, or -1. */
function headEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from + 3; i < end; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) {
      return i + 1;
    }
  }
  return -1;
}

/** What the floor reads from a head: body length and whether the connection ends after it. */
interface HeadFacts {
  contentLength: number;
  close: boolean;
}

/** True when `buf[at, at + name.length)` equals the lower-case `name`, ignoring case. */
function nameIs(buf: Uint8Array, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    if ((buf[at + i] | 0x20) !== name.charCodeAt(i)) return false;
  }
  return buf[at + name.length] === 58; // ':'
}

function trimmedValue(buf: Uint8Array, from: number, to: number): string {
  while (from < to && (buf[from] === 32 || buf[from] === 9)) from++;
  while (to > from && (buf[to - 1] === 32 || buf[to - 1] === 9)) to--;
  return String.fromCharCode(...buf.subarray(from, to));
}

/** Scans the header lines of `buf[start, end)` (a whole head) for the two framing facts. */
function headFacts(buf: Uint8Array, start: number, end: number): HeadFacts {
  const facts: HeadFacts = { contentLength: 0, close: false };
  let line = start;
  while (line < end) {
    let eol = line;
    while (eol < end && buf[eol] !== LF) eol++;
    const c = buf[line] | 0x20;
    if (c === 99 && nameIs(buf, line, "content-length")) {
      facts.contentLength = Number(trimmedValue(buf, line + 15, eol - 1));
    } else if (c === 99 && nameIs(buf, line, "connection")) {
      facts.close = trimmedValue(buf, line + 11, eol - 1).toLowerCase() === "close";
    }
    line = eol + 1;
  }
  return facts;
}

/** Checks the request line (`METHOD SP target SP HTTP/1.x`); returns the first header's index. */
function requestLine(buf: Uint8Array, start: number, end: number): number {
  let eol = start;
  while (eol < end && buf[eol] !== LF) eol++;
  const line = String.fromCharCode(...buf.subarray(start, eol - 1));
  const parts = line.split(" ");
  if (parts.length !== 3 || !parts[2].startsWith("HTTP/1.")) {
    throw new Error(`Cannot proxy "${line}": not an HTTP/1.x request line`);
  }
  return eol + 1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Sends one request head upstream on a pooled connection and writes the response back. */
async function exchange(
  client: Deno.TcpConn,
  request: Uint8Array,
): Promise<void> {
  const up = await take();
  try {
    await writeAll(up.conn, request);
  } catch (err) {
    up.conn.close();
    throw err;
  }
  let filled = 0;
  for (;;) {
    const n = await up.conn.read(up.buf.subarray(filled));
    if (n === null) throw new Error("Cannot read the response: upstream closed");
    filled += n;
    const end = headEnd(up.buf, 0, filled);
    if (end < 0) continue;
    const { contentLength, close } = headFacts(up.buf, 0, end);
    const total = end + contentLength;
    if (total > up.buf.length) throw new Error("Cannot relay the response: too large");
    if (filled < total) continue;
    await writeAll(client, up.buf.subarray(0, total));
    if (close) up.conn.close();
    else idle.push(up);
    return;
  }
}

async function serve(client: Deno.TcpConn): Promise<void> {
  client.setNoDelay(true);
  const added = encoder.encode(
    `x-forwarded-for: ${(client.remoteAddr as Deno.NetAddr).hostname}\r\n\r\n`,
  );
  const buf = new Uint8Array(BUFFER);
  const out = new Uint8Array(BUFFER + added.length);
  let start = 0;
  let filled = 0;
  try {
    for (;;) {
      const end = headEnd(buf, start, filled);
      if (end < 0) {
        if (start > 0) {
          buf.copyWithin(0, start, filled);
          filled -= start;
          start = 0;
        }
        if (filled === buf.length) throw new Error("Cannot read the request: head too large");
        const n = await client.read(buf.subarray(filled));
        if (n === null) return;
        filled += n;
        continue;
      }
      const headers = requestLine(buf, start, end);
      const { contentLength, close } = headFacts(buf, headers, end);
      if (contentLength > 0) throw new Error("Cannot proxy a request body: the floor has none");
      // The head without its blank line, then the added header and the blank line.
      const length = end - 2 - start;
      out.set(buf.subarray(start, end - 2));
      out.set(added, length);
      await exchange(client, out.subarray(0, length + added.length));
      start = end;
      if (close) return;
    }
  } catch {
    // The client or the upstream went away: this connection only.
  } finally {
    try {
      client.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port });
for await (const conn of listener) void serve(conn);

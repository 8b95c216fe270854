/**
 * The Deno.serve floor for a proxied request, for the benchmark only:
 * `deno run -A scripts/bench/serve_floor.ts <port> <backend port>`.
 *
 * Deno.serve in front (what bws used before its own HTTP/1.1 front end), a pool of raw
 * `Deno.connect` sockets behind, and nothing else: no routing, no header rewriting (one fixed
 * request head), no timeouts, no logging, Content-Length responses only, one response header
 * back. Whatever a proxy built on Deno.serve adds costs at least this much CPU per request.
 *
 * @module
 */
const [port, backendPort] = Deno.args.map(Number);

const encoder = new TextEncoder();
const REQUEST_HEAD = encoder.encode("GET /api/bench HTTP/1.1\r\nhost: backend\r\n\r\n");

interface Upstream {
  readonly conn: Deno.Conn;
  readonly buf: Uint8Array;
}
const idle: Upstream[] = [];

async function take(): Promise<Upstream> {
  const pooled = idle.pop();
  if (pooled) return pooled;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
  conn.setNoDelay(true);
  return { conn, buf: new Uint8Array(16 * 1024) };
}

function headEnd(buf: Uint8Array, end: number): number {
  for (let i = 3; i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
      return i + 1;
    }
  }
  return -1;
}

function contentLength(buf: Uint8Array, end: number): number {
  const head = String.fromCharCode(...buf.subarray(0, end)).toLowerCase();
  const at = head.indexOf("\r\ncontent-length:");
  if (at < 0) throw new Error("floor proxy: Content-Length responses only");
  return parseInt(head.slice(at + 17), 10);
}

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async () => {
  const up = await take();
  up.conn.write(REQUEST_HEAD);
  let filled = 0;
  while (true) {
    const n = await up.conn.read(up.buf.subarray(filled));
    if (n === null) throw new Error("floor proxy: upstream closed");
    filled += n;
    const end = headEnd(up.buf, filled);
    if (end < 0) continue;
    const length = contentLength(up.buf, end);
    if (filled < end + length) continue;
    const body = up.buf.slice(end, end + length);
    idle.push(up);
    return new Response(body, { headers: { "content-type": "text/plain" } });
  }
});

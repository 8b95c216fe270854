/**
 * Deno backend for `deno task bench`: `deno run -A scripts/bench/backend.ts <port>`.
 *
 * - `/large/upload` (any method): reads and discards the body, answers with the byte count.
 * - `/large/download?bytes=N`: streams N zero bytes in 64 KiB chunks.
 * - anything else: `hello world\n`.
 */

const port = Number(Deno.args[0] ?? 0);
const CHUNK = new Uint8Array(64 * 1024);
const HELLO = new TextEncoder().encode("hello world\n");

function download(total: number): Response {
  let left = total;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(left, CHUNK.length);
      // A fresh view each time: enqueued chunks must not be reused while queued.
      controller.enqueue(n === CHUNK.length ? CHUNK.slice() : CHUNK.slice(0, n));
      left -= n;
    },
  }, { highWaterMark: 1 });
  return new Response(body, {
    headers: { "content-type": "application/octet-stream", "content-length": String(total) },
  });
}

async function upload(req: Request): Promise<Response> {
  let bytes = 0;
  if (req.body) { for await (const chunk of req.body) bytes += chunk.byteLength; }
  return new Response(`${bytes}\n`);
}

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: (addr) => console.log(`backend listening on ${addr.hostname}:${addr.port}`),
}, (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/large/upload") return upload(req);
  if (url.pathname === "/large/download") {
    const bytes = Number(url.searchParams.get("bytes") ?? "0");
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      return new Response("bad bytes\n", { status: 400 });
    }
    return download(bytes);
  }
  return new Response(HELLO, { headers: { "content-type": "text/plain" } });
});

/**
 * A minimal keep-alive HTTP/1.1 upstream on raw TCP, run as its own process by tests that flood
 * bws (Deno.serve could not accept 500 connections a second on a loaded 2-core machine: its
 * accept queue overflowed and bws's connects waited for SYN retries, which is no part of what
 * those tests measure). Content-Length bodies only: uploads are read as they stream and counted,
 * `/api/big` sends `big` bytes, `/api/hang` never answers, `/api/stats` reports the counts and
 * the connections open as JSON, anything else answers "ok <path>". Arguments: port, big.
 *
 * @module
 */

import { type Child, spawnScript } from "./bws_process.ts";

/** Counts kept by the upstream, read from `/api/stats`. */
export interface UpstreamStats {
  uploadBytes: number;
  uploads: number;
  uploadsCut: number;
  /** Connections open now (the one asking included). */
  open: number;
}

/** Starts the upstream in its own process on `port`; `big` is the size of `/api/big`. */
export function spawnRawUpstream(dir: string, port: number, big = 0): Child {
  return spawnScript(dir, "raw_upstream.ts", CODE, [`${port}`, `${big}`]);
}

const CODE = `
const [port, big] = Deno.args.map(Number);
const CHUNK = new Uint8Array(64 * 1024).fill(7);
const enc = new TextEncoder();
let uploadBytes = 0, uploads = 0, uploadsCut = 0, open = 0;
async function writeAll(c: Deno.Conn, b: Uint8Array) {
  for (let o = 0; o < b.length;) o += await c.write(b.subarray(o));
}
function answer(body: string, status = 200) {
  return enc.encode("HTTP/1.1 " + status + " X\\r\\ncontent-length: " + enc.encode(body).length + "\\r\\n\\r\\n" + body);
}
async function serve(c: Deno.Conn) {
  const buf = new Uint8Array(64 * 1024);
  let have = 0;
  open++;
  try {
    while (true) {
      let end = -1;
      while (true) {
        for (let i = 3; i < have; i++) {
          if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) { end = i + 1; break; }
        }
        if (end >= 0) break;
        if (have === buf.length) throw new Error("head too large");
        const n = await c.read(buf.subarray(have));
        if (n === null) return;
        have += n;
      }
      const head = new TextDecoder().decode(buf.subarray(0, end));
      const path = head.split(" ")[1];
      const m = /\\r\\ncontent-length: *(\\d+)/i.exec(head);
      let left = m ? Number(m[1]) : 0;
      buf.copyWithin(0, end, have);
      have -= end;
      if (left > 0) {
        uploads++;
        const take = Math.min(left, have);
        uploadBytes += take; left -= take;
        buf.copyWithin(0, take, have); have -= take;
        while (left > 0) {
          const n = await c.read(buf);
          if (n === null) { uploadsCut++; return; }
          const t = Math.min(n, left);
          uploadBytes += t; left -= t;
          if (n > t) { buf.copyWithin(0, t, n); have = n - t; }
        }
        await writeAll(c, answer("got"));
      } else if (path === "/api/stats") {
        await writeAll(c, answer(JSON.stringify({ uploadBytes, uploads, uploadsCut, open })));
      } else if (path === "/api/hang") {
        while ((await c.read(buf)) !== null);
        return;
      } else if (path === "/api/big") {
        await writeAll(c, enc.encode("HTTP/1.1 200 OK\\r\\ncontent-length: " + big + "\\r\\n\\r\\n"));
        for (let sent = 0; sent < big;) {
          const n = Math.min(CHUNK.length, big - sent);
          await writeAll(c, CHUNK.subarray(0, n));
          sent += n;
        }
      } else {
        await writeAll(c, answer("ok " + path));
      }
      if (/\\r\\nconnection: *close/i.test(head)) return;
    }
  } catch {
    uploadsCut++;
  } finally {
    open--;
    try { c.close(); } catch { /* closed */ }
  }
}
for await (const c of Deno.listen({ hostname: "127.0.0.1", port })) void serve(c);
`;

/**
 * HTTP/2 floods a client can send from a few lines of code: streams opened and reset at once
 * (CVE-2023-44487, "rapid reset"), a header block continued for ever (CVE-2024-27316,
 * "CONTINUATION flood"), PINGs from a client that never reads their answers (CVE-2019-9512), and
 * streams opened as fast as the socket takes them by a client that never reads a response. bws
 * (its own process, as the binary runs) must end each such connection within seconds, serve
 * other clients meanwhile and keep its memory bounded. HTTP/2 is answered by the runtime's
 * server (hyper's h2) behind bws's own front end: these guard its limits across Deno upgrades.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { closeQuietly, getOnce, RssPeak, spawnBws, waitServing } from "./helpers/bws_process.ts";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { proxySite } from "./helpers/bws.ts";
import { frame, get, literal, PREFACE } from "./helpers/h2_frames.ts";
import { freePort } from "./helpers/pebble.ts";

const MiB = 1024 * 1024;
/** How long a flood may go on before bws must have ended (or stalled) it. */
const FLOOD_MS = 10_000;
/** Client writes that make no progress for this long count as stalled (bws stopped reading). */
const STALL_MS = 2_000;
/** bws's `send` timeout in this file, in seconds. */
const SEND_S = 2;

/**
 * Bytes of a header field the backend's answer to /pad carries, different every time (no HPACK
 * index can shorten it): answers whose heads fill the socket buffers of a client that never
 * reads within a second. They have no body (204), so no body waits to be sent: what stalls is
 * the relay's write to the client, with the answers made and held by the HTTP/2 server.
 */
const PAD = 4 * 1024;

function padding(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(PAD / 2));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Frames of `parts` in one buffer. */
function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** How a flood ended. */
interface FloodEnd {
  /** bws closed or reset the connection. */
  readonly ended: boolean;
  /** bws stopped reading: the client's writes made no progress for {@link STALL_MS}. */
  readonly stalled: boolean;
  /** Answers of a plain HTTP/1.1 client asking once a second during the flood. */
  readonly others: number[];
}

/**
 * Sends the preface, then `next(i)` for i = 0, 1, … until bws ends the connection, stops
 * reading, or {@link FLOOD_MS} pass. With `reads`, the client reads (and drops) what bws sends;
 * without, it never reads a byte. The connection is left open when bws did not end it.
 */
async function flood(
  port: number,
  reads: boolean,
  next: (i: number) => Uint8Array,
): Promise<FloodEnd & { conn: Deno.Conn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let ended = false;
  if (reads) {
    (async () => {
      const buf = new Uint8Array(64 * 1024);
      while ((await conn.read(buf).catch(() => null)) !== null) { /* dropped */ }
      ended = true;
    })();
  }
  const others: number[] = [];
  let nextOther = Date.now() + 500;
  let stalled = false;
  const start = Date.now();
  try {
    await conn.write(join([PREFACE, frame(4, 0, 0, new Uint8Array(0))]));
    for (let i = 0; !ended && Date.now() - start < FLOOD_MS; i++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const progress = await Promise.race([
        conn.write(next(i)).then(() => true),
        new Promise<false>((r) => timer = setTimeout(() => r(false), STALL_MS)),
      ]);
      clearTimeout(timer);
      if (!progress) {
        stalled = true;
        break;
      }
      if (Date.now() >= nextOther) {
        others.push((await getOnce(port, "/", 3000)).status);
        nextOther = Date.now() + 1000;
      }
    }
  } catch {
    ended = true; // a write failed: bws closed or reset the connection
  }
  others.push((await getOnce(port, "/", 3000)).status);
  return { ended, stalled, others, conn };
}

/** Reads `conn` to its end; true when bws closes it within `ms` (what it sent first is
 * dropped: a client that stops flooding may still read its backlog). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const timer = setTimeout(() => closeQuietly(conn), ms);
  const start = Date.now();
  const buf = new Uint8Array(256 * 1024);
  while ((await conn.read(buf).catch(() => null)) !== null) { /* dropped */ }
  clearTimeout(timer);
  return Date.now() - start < ms;
}

describe("HTTP/2 floods against bws", { skip: Deno.build.os !== "linux" }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_h2_floods_" });
  const port = freePort();
  let backend: Backend;
  let bws: ReturnType<typeof spawnBws>;
  let rss: RssPeak;

  before(async () => {
    backend = startEchoBackend(
      "b",
      (req) =>
        new URL(req.url).pathname === "/pad"
          ? new Response(null, { status: 204, headers: { "x-pad": padding() } })
          : undefined,
    );
    bws = spawnBws(
      dir,
      proxySite(
        [backend.url],
        `
[logging]
level = "error"
access_log = false
`,
        undefined,
        `[server.timeouts]
send = ${SEND_S}
# Longer than any flood here: a connection closed for silence does not count as ended by send.
keep_alive = 120`,
        port,
      ),
    );
    await waitServing(port, "/");
    // Warm up (JIT, pools) before the memory baseline.
    for (let i = 0; i < 200; i++) await getOnce(port, "/");
    rss = new RssPeak(bws.pid);
  });

  after(async () => {
    await bws?.stop();
    await backend?.close();
    Deno.removeSync(dir, { recursive: true });
  });

  it("ends a connection that opens and resets streams as fast as it can (rapid reset)", async () => {
    let stream = 1;
    const end = await flood(port, true, () => {
      const parts: Uint8Array[] = [];
      for (let k = 0; k < 100; k++, stream += 2) {
        parts.push(get(stream, "/"), frame(3, 0, stream, new Uint8Array([0, 0, 0, 8])));
      }
      return join(parts);
    });
    closeQuietly(end.conn);
    expect(end.ended).toBe(true);
    expect(end.others.every((s) => s === 200)).toBe(true);
  });

  it("ends a connection whose header block never ends (CONTINUATION flood)", async () => {
    const field = new Uint8Array(literal("x-filler", "f".repeat(100)));
    const end = await flood(port, true, (i) => {
      if (i === 0) {
        // HEADERS without END_HEADERS: the block goes on in CONTINUATION frames.
        const block = [...literal(":method", "GET"), ...literal(":scheme", "http")];
        return frame(1, 0x1, 1, new Uint8Array(block));
      }
      return join(Array.from({ length: 50 }, () => frame(9, 0, 1, field)));
    });
    closeQuietly(end.conn);
    expect(end.ended).toBe(true);
    expect(end.others.every((s) => s === 200)).toBe(true);
  });

  it("ends a connection flooding PINGs whose answers it never reads", async () => {
    const pings = join(Array.from({ length: 500 }, () => frame(6, 0, 0, new Uint8Array(8))));
    const end = await flood(port, false, () => pings);
    expect(end.ended || end.stalled).toBe(true);
    // Stalled: bws stopped reading it; its answers wait on a client that never reads, so the
    // send timeout closes it.
    expect(await closedWithin(end.conn, (SEND_S + 3) * 1000)).toBe(true);
    expect(end.others.every((s) => s === 200)).toBe(true);
  });

  it("ends a connection opening streams it never reads the answers of", async () => {
    let stream = 1;
    const end = await flood(port, false, () => {
      const parts: Uint8Array[] = [];
      for (let k = 0; k < 100; k++, stream += 2) parts.push(get(stream, "/pad"));
      return join(parts);
    });
    const closed = end.ended || await closedWithin(end.conn, (SEND_S + 3) * 1000);
    expect(closed).toBe(true);
    expect(end.others.every((s) => s === 200)).toBe(true);
  });

  it("keeps its memory bounded through all of them, and serves afterwards", async () => {
    const peak = rss.stop();
    console.log(
      `bws RSS ${(rss.base / MiB).toFixed(0)} MB before the floods, peak ${
        (peak / MiB).toFixed(0)
      } MB`,
    );
    expect(peak - rss.base).toBeLessThan(128 * MiB);
    expect((await getOnce(port, "/")).status).toBe(200);
  });
});

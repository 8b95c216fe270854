/**
 * Hostile HTTP/2 clients end to end.
 *
 * Clients that stop reading (SPEC 9's `send` timeout, which HTTP/1.1 connections already have):
 * a client that opens streams and then never lets a response through (a flow-control window of
 * 0, or a TCP window it never drains) must not hold bws's files, upstream connections and buffers
 * for ever. A connection with a response stalled for `send` is closed; a response that is only
 * slow to come (its upstream takes longer than `send`) is not cut.
 *
 * Clients whose `host` field names another site than `:authority` (RFC 9113 §8.3.1: malformed):
 * bws routes on `:authority`, so such a request would reach another site than the one a front
 * proxy checking `:authority` let through. It gets 400, as does an `:authority` that HTTP/1.1's
 * Host check would refuse (userinfo).
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { frame, get, PREFACE } from "./helpers/h2_frames.ts";

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** SETTINGS with SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may send a byte of DATA. */
const WINDOW_ZERO = frame(4, 0, 0, new Uint8Array([0, 4, 0, 0, 0, 0]));

interface Frames {
  /** The first HPACK byte of each stream's response HEADERS (0x88 = indexed :status 200). */
  readonly status: Map<number, number>;
  /** DATA bytes per stream, as latin1 text. */
  readonly data: Map<number, string>;
  /** Streams the server reset (RST_STREAM). */
  readonly reset: Set<number>;
  /** Streams whose response ended (END_STREAM on HEADERS or DATA). */
  readonly ended: Set<number>;
  closed: boolean;
}

/** Reads frames from `conn` in the background into a {@link Frames}. */
function watchFrames(conn: Deno.Conn): Frames {
  const seen: Frames = {
    status: new Map(),
    data: new Map(),
    reset: new Set(),
    ended: new Set(),
    closed: false,
  };
  (async () => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) break;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      while (buf.length >= 9) {
        const len = (buf[0] << 16) | (buf[1] << 8) | buf[2];
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const stream = new DataView(buf.buffer, buf.byteOffset).getUint32(5) & 0x7fffffff;
        if (type === 3) seen.reset.add(stream);
        if (type === 1 && !seen.status.has(stream)) seen.status.set(stream, buf[9]);
        if (type === 0) {
          let text = seen.data.get(stream) ?? "";
          for (const b of buf.subarray(9, 9 + len)) text += String.fromCharCode(b);
          seen.data.set(stream, text);
        }
        if ((type === 0 || type === 1) && (buf[4] & 1) !== 0) seen.ended.add(stream);
        buf = buf.subarray(9 + len);
      }
    }
    seen.closed = true;
  })();
  return seen;
}

async function waitFor(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`Cannot wait for ${what}: still false after ${ms} ms`);
    await sleep(50);
  }
}

describe("HTTP/2 clients that stop reading", () => {
  let root: string;
  let backend: Backend;
  let bws: TestBws;
  const bigBody = new Uint8Array(4 * 1024 * 1024).fill(97);

  before(async () => {
    root = Deno.makeTempDirSync({ prefix: "bws_h2_stall_" });
    Deno.writeFileSync(`${root}/big.bin`, bigBody);
    backend = startEchoBackend("b", (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/api/big") return new Response(bigBody);
      if (path === "/api/late") {
        // The head at once, the body only after longer than `send`.
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(enc.encode("first "));
            await sleep(2000);
            c.enqueue(enc.encode("second"));
            c.close();
          },
        });
        return new Response(body, { headers: { "content-type": "application/octet-stream" } });
      }
      return undefined;
    });
    bws = await startBws(`
[server]
grace_period = 1

[server.timeouts]
send = 1

[logging]
level = "warn"

[[sites]]
name = "s"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${root}"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/api"
upstream = "b"
`);
  });

  after(async () => {
    await bws.close();
    await backend.close();
    Deno.removeSync(root, { recursive: true });
  });

  it("closes a connection whose static and proxied responses a window-0 client never lets through, after send", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const frames = watchFrames(conn);
      const streams: number[] = [];
      const parts = [PREFACE, WINDOW_ZERO];
      for (let i = 0; i < 10; i++) {
        const id = 1 + 2 * i;
        streams.push(id);
        parts.push(get(id, i % 2 === 0 ? "/big.bin" : "/api/big"));
      }
      for (const p of parts) await conn.write(p);
      const t0 = Date.now();
      // As for HTTP/1.1: the connection is closed (Deno.serve cannot reset one stream while it
      // waits to hand its last chunk over).
      await waitFor("the stalled connection closed", 6000, () => frames.closed);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      // Each one is in the access log, as a response that failed on the way out.
      await waitFor(
        "ten access log lines",
        3000,
        () =>
          bws.logger.entries.filter((e) => e.path === "/big.bin" || e.path === "/api/big")
            .length === 10,
      );
    } finally {
      conn.close();
    }
  });

  it("keeps a response whose upstream is slower than send", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const frames = watchFrames(conn);
      await conn.write(PREFACE);
      await conn.write(frame(4, 0, 0, new Uint8Array(0)));
      await conn.write(get(1, "/api/late"));
      await waitFor("the late response", 6000, () => frames.ended.has(1) || frames.reset.has(1));
      expect(frames.reset.has(1)).toBe(false);
      expect(frames.ended.has(1)).toBe(true);
    } finally {
      conn.close();
    }
  });
});

describe("HTTP/2 requests whose host field differs from :authority", () => {
  let a: string;
  let b: string;
  let bws: TestBws;

  before(async () => {
    a = Deno.makeTempDirSync({ prefix: "bws_h2_host_a_" });
    b = Deno.makeTempDirSync({ prefix: "bws_h2_host_b_" });
    Deno.writeTextFileSync(`${a}/who.txt`, "site a\n");
    Deno.writeTextFileSync(`${b}/who.txt`, "site b\n");
    bws = await startBws(`
[server]
grace_period = 1

[logging]
level = "warn"

[[sites]]
name = "a"
hostname = "a.test"
port = 0
bind = "127.0.0.1"
static_dir = "${a}"

[[sites]]
name = "b"
hostname = "b.test"
port = 0
bind = "127.0.0.1"
static_dir = "${b}"
`);
  });

  after(async () => {
    await bws.close();
    Deno.removeSync(a, { recursive: true });
    Deno.removeSync(b, { recursive: true });
  });

  it("routes on :authority, takes a host field that agrees, and refuses one that does not, or userinfo, with 400", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const frames = watchFrames(conn);
      await conn.write(PREFACE);
      await conn.write(frame(4, 0, 0, new Uint8Array(0)));
      await conn.write(get(1, "/who.txt", "b.test"));
      await conn.write(get(3, "/who.txt", "b.test", [["host", "B.test"]]));
      await conn.write(get(5, "/who.txt", null, [["host", "b.test"]]));
      await conn.write(get(7, "/who.txt", "b.test", [["host", "a.test"]]));
      await conn.write(get(9, "/who.txt", "a.test", [["host", "b.test"]]));
      // Userinfo (RFC 9113 §8.3.1 forbids it; HTTP/1.1's Host check refuses "@" too).
      await conn.write(get(11, "/who.txt", "x@b.test"));
      await waitFor(
        "six answers",
        5000,
        () => [1, 3, 5, 7, 9, 11].every((s) => frames.ended.has(s)),
      );
      expect(frames.data.get(1)).toBe("site b\n");
      expect(frames.data.get(3)).toBe("site b\n");
      expect(frames.data.get(5)).toBe("site b\n");
      // 0x8c: :status 400 from the static table.
      expect([7, 9, 11].map((s) => frames.status.get(s))).toEqual([0x8c, 0x8c, 0x8c]);
      expect(frames.data.get(11)).not.toContain("site");
      expect(frames.data.get(7)).not.toContain("site");
      expect(frames.data.get(9)).not.toContain("site");
      // The refusals are in the access log, as HTTP/1.1's are.
      const refused = bws.logger.entries.filter((e) => e.status === 400);
      expect(refused.map((e) => e.path)).toEqual(["/who.txt", "/who.txt", "/who.txt"]);
      expect(refused.every((e) => e.site === "-" && e.method === "GET")).toBe(true);
    } finally {
      conn.close();
    }
  });
});

describe("HTTP/2 requests in flight from one address", () => {
  let backend: Backend;
  let bws: TestBws;
  let inFlight = 0;
  let release: () => void = () => {};
  let released = Promise.resolve();

  before(async () => {
    backend = startEchoBackend("b", (req) => {
      if (new URL(req.url).pathname !== "/api/hold") return undefined;
      // In flight until released, or until bws gives the request up (closes its connection).
      inFlight++;
      let counted = true;
      const end = () => {
        if (counted) inFlight--;
        counted = false;
      };
      req.signal.addEventListener("abort", end);
      return released.then(() => {
        end();
        return new Response("held\n");
      });
    });
    // One proxy site (every path to group "b"), at most three connections per address.
    bws = await startBws(
      proxySite([backend.url], "", undefined, "[server.limits]\nmax_connections_per_ip = 3"),
    );
  });

  after(async () => {
    release();
    await bws.close();
    await backend.close();
  });

  it("are held to max_connections_per_ip, as HTTP/1.1 connections are: more get 503 until some end", async () => {
    released = new Promise<void>((r) => (release = r));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const frames = watchFrames(conn);
      await conn.write(PREFACE);
      await conn.write(frame(4, 0, 0, new Uint8Array(0)));
      const streams = [1, 3, 5, 7, 9, 11, 13, 15];
      for (const s of streams) await conn.write(get(s, "/api/hold"));
      // Five answered at once by bws itself; three reach the upstream and wait there.
      await waitFor("five refusals", 5000, () => frames.ended.size === 5);
      await waitFor("three held upstream", 5000, () => inFlight === 3);
      await sleep(200);
      expect(inFlight).toBe(3);
      const refused = streams.filter((s) => frames.ended.has(s));
      for (const s of refused) expect(frames.data.get(s)).toBe("503 Service Unavailable\n");
      const entries = bws.logger.entries.filter((e) => e.status === 503);
      expect(entries.length).toBe(5);
      expect(entries.every((e) => e.path === "/api/hold" && e.error?.includes("in flight"))).toBe(
        true,
      );

      // Once they end, the address has room again, on the same connection.
      release();
      await waitFor("the held three", 5000, () => frames.ended.size === 8);
      for (const s of streams.filter((s) => !refused.includes(s))) {
        expect(frames.data.get(s)).toContain("held");
      }
      released = Promise.resolve();
      await conn.write(get(17, "/api/hold"));
      await waitFor("one more", 5000, () => frames.ended.has(17));
      expect(frames.data.get(17)).toContain("held");
    } finally {
      conn.close();
    }
  });

  it("frees the budget of streams the client resets, and gives up their upstream requests", async () => {
    released = new Promise<void>((r) => (release = r));
    const rst = (stream: number) => frame(3, 0, stream, new Uint8Array([0, 0, 0, 8])); // CANCEL
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const frames = watchFrames(conn);
      await conn.write(PREFACE);
      await conn.write(frame(4, 0, 0, new Uint8Array(0)));
      // Three times: three held streams, then the client cancels them all.
      for (const first of [1, 7, 13]) {
        const streams = [first, first + 2, first + 4];
        for (const s of streams) await conn.write(get(s, "/api/hold"));
        await waitFor("three held upstream", 5000, () => inFlight === 3);
        for (const s of streams) await conn.write(rst(s));
        await waitFor("the upstream requests given up", 5000, () => inFlight === 0);
      }
      // Nothing was refused, and the address has its whole budget again.
      expect([...frames.data.values()].some((d) => d.includes("503"))).toBe(false);
      for (const s of [19, 21, 23]) await conn.write(get(s, "/api/hold"));
      await waitFor("three held upstream", 5000, () => inFlight === 3);
      release();
      await waitFor("three answers", 5000, () => [19, 21, 23].every((s) => frames.ended.has(s)));
      for (const s of [19, 21, 23]) expect(frames.data.get(s)).toContain("held");
    } finally {
      conn.close();
    }
  });
});

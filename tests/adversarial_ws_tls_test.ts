/**
 * Adversarial WebSocket and TLS clients against a running bws: raw TCP / raw TLS bytes that a
 * browser would never send. Each bad client must get a clean refusal or close, leave no relayed
 * pair behind, and not disturb a well-behaved client on the same server.
 */

import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { expect } from "expect";
import {
  closeClient,
  type EchoUpstream,
  openClient,
  startEchoUpstream,
  type TestClient,
} from "./helpers/ws_peers.ts";
import { waitFor, withTimeout } from "./helpers/wait.ts";
import { sslToml, TestPki } from "./helpers/test_pki.ts";
import { rawRequest, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";
import { type BwsProcess, rssOf, spawnBws, waitServing } from "./helpers/bws_process.ts";
import { freePort } from "./helpers/pebble.ts";

const enc = new TextEncoder();
const MiB = 1024 * 1024;
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** One client frame; masked unless told otherwise. */
function frame(
  opcode: number,
  payload: Uint8Array,
  o: { fin?: boolean; mask?: boolean } = {},
): Uint8Array {
  const fin = o.fin ?? true;
  const mask = o.mask ?? true;
  const len = payload.length;
  const m = mask ? 0x80 : 0;
  const head = [(fin ? 0x80 : 0) | opcode];
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else {head.push(
      m | 127,
      0,
      0,
      0,
      0,
      len >>> 24,
      (len >> 16) & 0xff,
      (len >> 8) & 0xff,
      len & 0xff,
    );}
  const key = mask ? crypto.getRandomValues(new Uint8Array(4)) : new Uint8Array(0);
  const out = new Uint8Array(head.length + key.length + len);
  out.set(head);
  out.set(key, head.length);
  const body = out.subarray(head.length + key.length);
  for (let i = 0; i < len; i++) body[i] = mask ? payload[i] ^ key[i & 3] : payload[i];
  return out;
}

function append(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

interface RawWs {
  conn: Deno.Conn;
  /** Bytes read after the 101 head. */
  rest: Uint8Array<ArrayBuffer>;
}

/** Opens a WebSocket by hand; throws unless the answer is 101. */
async function rawUpgrade(port: number, path: string): Promise<RawWs> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc.encode(
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  let bytes = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    bytes = append(bytes, buf.subarray(0, n));
    const end = new TextDecoder("latin1").decode(bytes).indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = new TextDecoder().decode(bytes.subarray(0, end));
      if (!head.startsWith("HTTP/1.1 101")) break;
      return { conn, rest: bytes.slice(end + 4) };
    }
  }
  conn.close();
  throw new Error(`Cannot upgrade "${path}": no 101`);
}

/** What the server sent until its close frame, the end of the connection, or `ms`. */
interface ServerEnd {
  /** Close code of the server's close frame; "eof" when the connection ended without one. */
  code: number | "eof" | "timeout";
  reason: string;
  /** Opcodes of the frames before it. */
  opcodes: number[];
  payloads: Uint8Array[];
}

async function readToClose(ws: RawWs, ms = 3000): Promise<ServerEnd> {
  let bytes = ws.rest;
  const opcodes: number[] = [];
  const payloads: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  const deadline = Date.now() + ms;
  for (;;) {
    while (bytes.length >= 2) {
      let len = bytes[1] & 0x7f;
      let off = 2;
      if (len === 126) [len, off] = [(bytes[2] << 8) | bytes[3], 4];
      else if (len === 127) {
        [len, off] = [bytes[6] * 2 ** 24 + (bytes[7] << 16) + (bytes[8] << 8) + bytes[9], 10];
      }
      if (bytes.length < off + len) break;
      const op = bytes[0] & 0x0f;
      const payload = bytes.slice(off, off + len);
      bytes = bytes.slice(off + len);
      if (op === 8) {
        const code = len >= 2 ? (payload[0] << 8) | payload[1] : 1005;
        return { code, reason: new TextDecoder().decode(payload.subarray(2)), opcodes, payloads };
      }
      opcodes.push(op);
      payloads.push(payload);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      ws.conn.read(buf).catch(() => null),
      new Promise<"t">((r) => timer = setTimeout(() => r("t"), Math.max(0, deadline - Date.now()))),
    ]);
    clearTimeout(timer);
    if (n === "t") return { code: "timeout", reason: "", opcodes, payloads };
    if (n === null) return { code: "eof", reason: "", opcodes, payloads };
    bytes = append(bytes, buf.subarray(0, n));
  }
}

async function writeAll(conn: Deno.Conn, parts: Uint8Array[]): Promise<void> {
  try {
    for (const p of parts) await conn.write(p);
  } catch { /* the server may reset a connection it refused */ }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** The WebSocket site every adversarial client here talks to: `/ws` relayed to an echo upstream
 * (1 MiB max_buffered), `/plain` to an HTTP backend. */
function wsSiteToml(echoPort: number, httpUrl: string, port: number): string {
  return `
[server]
grace_period = 1

[[sites]]
name = "ws"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[sites.proxy.websocket]
max_buffered = ${1 * MiB}

[[sites.proxy.upstreams]]
name = "echo"
url = "http://127.0.0.1:${echoPort}"

[[sites.proxy.upstreams]]
name = "http"
url = "${httpUrl}"

[[sites.proxy.routes]]
path = "/ws"
upstream = "echo"
websocket = true

[[sites.proxy.routes]]
path = "/plain"
upstream = "http"
`;
}

describe("Adversarial WebSocket clients against bws (SPEC 6)", () => {
  let echo: EchoUpstream;
  let http: ReturnType<typeof startEchoBackend>;
  let bws: TestBws;
  let good: TestClient;
  let round = 0;

  before(async () => {
    echo = startEchoUpstream();
    http = startEchoBackend("http");
    bws = await startBws(wsSiteToml(echo.port, http.url, 0));
    good = await openClient(`ws://127.0.0.1:${bws.port}/ws/good`);
  });

  after(async () => {
    await closeClient(good);
    await bws.close();
    await echo.close();
    await http.close();
  });

  /** Relayed pairs open on the echo member (the good client's is one). */
  const openPairs = () =>
    bws.handle.upstreams().find((g) => g.name === "echo")!.members[0].webSockets;

  /** The well-behaved client still gets its echo promptly. */
  async function goodStillWorks(): Promise<void> {
    const text = `still here ${++round}`;
    good.socket.send(text);
    expect(await withTimeout(good.next(), 1000, "good client's echo")).toBe(text);
  }

  /**
   * After a bad client: its pair is gone and the upstream was told why: by default "client went
   * away" (1001, the client dropped without a close frame).
   */
  async function pairForgotten(
    expected: { code: number; reason: string } = { code: 1001, reason: "client went away" },
  ): Promise<void> {
    expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual(expected);
    await waitFor("only the good pair left", 3000, () => openPairs() === 1);
  }

  const upgradeHead = (extra: string, version = "13", key = KEY, path = "/ws/x") =>
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: ${version}\r\n${extra}\r\n`;

  it("refuses a missing or short key (400) and version 12 (426, names 13) without going upstream", async () => {
    const upstreamsBefore = echo.sockets.length;
    const noKey = await rawRequest(
      bws.port,
      "GET /ws/x HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
      500,
    );
    expect(noKey).toMatch(/^HTTP\/1.1 400 /);
    for (const key of ["abc", "dGhlIHNhbXBsZQ==", `${KEY}x`]) {
      expect(await rawRequest(bws.port, upgradeHead("", "13", key), 500)).toMatch(
        /^HTTP\/1.1 400 /,
      );
    }
    const v12 = await rawRequest(bws.port, upgradeHead("", "12"), 500);
    expect(v12).toMatch(/^HTTP\/1.1 426 /);
    expect(v12).toMatch(/\r\nsec-websocket-version: 13\r\n/i);
    expect(v12).toMatch(/\r\nx-request-id: /i);
    expect(echo.sockets.length).toBe(upstreamsBefore);
    expect(openPairs()).toBe(1);
    await goodStillWorks();
  });

  it("never upgrades an upgrade with a body; two Upgrade headers naming websocket upgrade", async () => {
    const withBody = await rawRequest(
      bws.port,
      upgradeHead("Content-Length: 5\r\n") + "hello",
      500,
    );
    expect(withBody).toMatch(/^HTTP\/1.1 400 /);
    const chunked = await rawRequest(
      bws.port,
      upgradeHead("Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n",
      500,
    );
    expect(chunked).toMatch(/^HTTP\/1.1 400 /);
    await waitFor("no pair from a body upgrade", 2000, () => openPairs() === 1);
    // Deno joins the two headers ("websocket, h2c"): a valid upgrade offering websocket.
    const ws = await rawUpgrade(bws.port, "/ws/two");
    try {
      await ws.conn.write(frame(1, enc.encode("two")));
      const end = await readToClose(ws, 300);
      expect(new TextDecoder().decode(end.payloads[0])).toBe("two");
    } finally {
      ws.conn.close();
    }
    await pairForgotten();
    const plain = await rawRequest(
      bws.port,
      upgradeHead("Upgrade: h2c\r\n", "13", KEY, "/plain"),
      500,
    );
    expect(plain).toMatch(/^HTTP\/1.1 200 /);
    expect(plain).not.toMatch(/"upgrade"/);
    await goodStillWorks();
  });

  it("closes protocol errors with 1002 itself; lets the upstream judge payloads and close codes", async () => {
    // Framing errors bws sees as bytes pass by: the client gets 1002, the upstream a 1000 saying
    // so. Payloads (UTF-8, close codes) are the upstream's to judge: bws relays them and passes
    // on its verdict (Deno's upstream drops the connection, or answers 1002).
    const bwsRefuses = { code: 1000, reason: "client protocol error" };
    const upstreamDrops = { code: 0, reason: "" };
    const shapes: [string, Uint8Array[], number, { code: number; reason: string }][] = [
      ["reserved opcode 3", [frame(3, enc.encode("x"))], 1002, bwsRefuses],
      ["reserved control opcode 0xB", [frame(0xb, enc.encode("x"))], 1002, bwsRefuses],
      ["continuation first", [frame(0, enc.encode("x"))], 1002, bwsRefuses],
      ["fragmented ping", [frame(9, new Uint8Array(2), { fin: false })], 1002, bwsRefuses],
      ["ping over 125 bytes", [frame(9, new Uint8Array(200))], 1002, bwsRefuses],
      ["unmasked text frame", [frame(1, enc.encode("bare"), { mask: false })], 1002, bwsRefuses],
      ["invalid UTF-8 text", [frame(1, new Uint8Array([0xc3, 0x28]))], 1011, upstreamDrops],
      [
        "close with code 999",
        [frame(8, new Uint8Array([999 >> 8, 999 & 0xff]))],
        1002,
        upstreamDrops,
      ],
      [
        "close with code 1005",
        [frame(8, new Uint8Array([1005 >> 8, 1005 & 0xff]))],
        1002,
        upstreamDrops,
      ],
      [
        "close with code 5000",
        [frame(8, new Uint8Array([5000 >> 8, 5000 & 0xff]))],
        1002,
        upstreamDrops,
      ],
      ["close with a 1-byte payload", [frame(8, new Uint8Array([3]))], 1011, upstreamDrops],
    ]; // deno-fmt-ignore
    for (const [name, parts, clientCode, upstreamClose] of shapes) {
      const ws = await rawUpgrade(bws.port, "/ws/bad");
      try {
        await writeAll(ws.conn, parts);
        const end = await readToClose(ws, 2000);
        expect({ name, code: end.code, opcodes: end.opcodes }).toEqual({
          name,
          code: clientCode,
          opcodes: [],
        });
      } finally {
        closeQuietly(ws.conn);
      }
      await pairForgotten(upstreamClose);
    }
    await goodStillWorks();
  });

  it("closes a message over max_buffered with 1009 (was 1011 'upstream not reading')", async () => {
    const ws = await rawUpgrade(bws.port, "/ws/big");
    try {
      const part = new Uint8Array(512 * 1024);
      await writeAll(ws.conn, [
        frame(2, part, { fin: false }),
        frame(0, part, { fin: false }),
        frame(0, part, { fin: false }),
        frame(0, part),
      ]);
      const end = await readToClose(ws, 3000);
      expect({ code: end.code, reason: end.reason }).toEqual({
        code: 1009,
        reason: "message too big",
      });
    } finally {
      ws.conn.close();
    }
    await pairForgotten({ code: 1000, reason: "client message too big" });
    await goodStillWorks();
  });

  it("closes the upstream and forgets the pair when the client vanishes mid-message", async () => {
    const ws = await rawUpgrade(bws.port, "/ws/vanish");
    await waitFor("pair open", 2000, () => openPairs() === 2);
    await ws.conn.write(frame(2, new Uint8Array(1000), { fin: false }));
    await ws.conn.write(frame(0, new Uint8Array(1000), { fin: false }).subarray(0, 500));
    ws.conn.close();
    // Mid-frame: bws cannot put a close frame into the upstream's stream; it closes the
    // connection (the upstream sees no close frame), as a TCP proxy would.
    await pairForgotten({ code: 0, reason: "" });
    await goodStillWorks();
  });
});
/**
 * The floods whose memory is measured, against bws in a process of its own: `deno test
 * --parallel` runs test files in one process, so this one's RSS would count what the files
 * beside it allocate.
 */
describe("WebSocket floods against a bws process: its memory stays bounded (SPEC 6)", () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_ws_floods_" });
  const port = freePort();
  let echo: EchoUpstream;
  let http: ReturnType<typeof startEchoBackend>;
  let proc: BwsProcess;
  let good: TestClient;
  let round = 0;

  before(async () => {
    echo = startEchoUpstream();
    http = startEchoBackend("http");
    proc = spawnBws(dir, wsSiteToml(echo.port, http.url, port));
    await waitServing(port, "/plain");
    good = await openClient(`ws://127.0.0.1:${port}/ws/good`);
  });

  after(async () => {
    await closeClient(good);
    await proc.stop();
    await echo.close();
    await http.close();
    Deno.removeSync(dir, { recursive: true });
  });

  /** Relayed pairs open, as the echo upstream sees them (the good client's is one). */
  const openPairs = () => echo.sockets.filter((s) => s.readyState === WebSocket.OPEN).length;

  /** The well-behaved client still gets its echo promptly. */
  async function goodStillWorks(): Promise<void> {
    const text = `still here ${++round}`;
    good.socket.send(text);
    expect(await withTimeout(good.next(), 1000, "good client's echo")).toBe(text);
  }

  /** After a bad client: its pair is gone and the upstream was told why. */
  async function pairForgotten(expected: { code: number; reason: string }): Promise<void> {
    expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual(expected);
    await waitFor("only the good pair left", 3000, () => openPairs() === 1);
  }

  it("closes a 16 MiB fragmented message with 1009 as soon as it passes max_buffered", async () => {
    const ws = await rawUpgrade(port, "/ws/huge");
    const rssBefore = rssOf(proc.pid);
    try {
      const part = new Uint8Array(MiB);
      const parts = [frame(2, part, { fin: false })];
      for (let i = 0; i < 15; i++) parts.push(frame(0, part, { fin: false }));
      await writeAll(ws.conn, parts);
      const end = await readToClose(ws, 3000);
      expect(end.code).toBe(1009);
    } finally {
      closeQuietly(ws.conn);
    }
    expect(rssOf(proc.pid) - rssBefore).toBeLessThan(64 * MiB);
    await pairForgotten({ code: 1000, reason: "client message too big" });
    await goodStillWorks();
  });

  it("survives a ping flood from a client that never reads; memory stays bounded", async () => {
    const ws = await rawUpgrade(port, "/ws/flood");
    try {
      const ping = frame(9, new Uint8Array(4));
      const batch = new Uint8Array(ping.length * 10_000);
      for (let i = 0; i < 10_000; i++) batch.set(ping, i * ping.length);
      const rssBefore = rssOf(proc.pid);
      const started = Date.now();
      let sent = 0;
      // Bounded in count and time; the writes stall once bws stops reading (its pongs are
      // not read), which is the bound.
      const flood = (async () => {
        while (sent < 300_000 && Date.now() - started < 2000) {
          await ws.conn.write(batch);
          sent += 10_000;
        }
      })().catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      await goodStillWorks();
      await withTimeout(flood, 4000, "flood writes").catch(() => {});
      expect(rssOf(proc.pid) - rssBefore).toBeLessThan(64 * MiB);
      expect(openPairs()).toBe(2);
      if (Deno.env.get("WS_TEST_VERBOSE")) console.log(`ping flood: ${sent} pings written`);
    } finally {
      ws.conn.close();
    }
    // The client left with its pings half relayed (mid-frame, no room for a close frame): the
    // upstream's connection is closed without one.
    const closed = await withTimeout(echo.nextClose(), 3000, "upstream close");
    expect([0, 1001]).toContain(closed.code);
    await waitFor("only the good pair left", 3000, () => openPairs() === 1);
    await goodStillWorks();
  });
});

/** The subject CN of the certificate served for `servername` (undefined: no SNI). */
function servedCn(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: "127.0.0.1", port, servername, rejectUnauthorized: false },
      () => {
        const cert = s.getPeerX509Certificate();
        s.destroy();
        resolve(cert?.subject ?? "none");
      },
    );
    s.on("error", reject);
  });
}

/** Reads what the server sends first, or "open" when nothing comes within `ms`. */
async function firstBytes(conn: Deno.Conn, ms: number): Promise<number[] | "eof" | "open"> {
  const buf = new Uint8Array(1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const n = await Promise.race([
    conn.read(buf).catch(() => null),
    new Promise<"open">((r) => timer = setTimeout(() => r("open"), ms)),
  ]);
  clearTimeout(timer);
  if (n === "open") return "open";
  return n === null ? "eof" : [...buf.subarray(0, n)];
}

describe("Adversarial TLS clients against bws (SPEC 8)", () => {
  let pki: TestPki;
  let backend: ReturnType<typeof startEchoBackend>;
  let sni: TestBws;
  let direct: TestBws;
  let client: Deno.HttpClient;

  const site = (name: string, leaf: { certFile: string; keyFile: string }, extra = "") => `
[[sites]]
name = "${name}"
hostname = "${name}.test"
port = 0
bind = "127.0.0.1"
${extra}

${sslToml(leaf)}
[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;

  before(async () => {
    pki = await TestPki.create();
    backend = startEchoBackend("tls");
    const a = await pki.issue("a.test", ["DNS:a.test", "IP:127.0.0.1"]);
    const b = await pki.issue("b.test", ["DNS:b.test", "IP:127.0.0.1"]);
    // Two certificates on one port: the node:tls SNI path; "b" is the default site.
    sni = await startBws(site("a", a) + site("b", b, "default = true"));
    // One certificate: Deno.listenTls terminates TLS.
    direct = await startBws(site("a", a));
    client = Deno.createHttpClient({ caCerts: [pki.caPem] });
  });

  after(async () => {
    client.close();
    await sni.close();
    await direct.close();
    await backend.close();
    await pki.remove();
  });

  async function goodStillWorks(port: number): Promise<void> {
    const res = await fetch(`https://127.0.0.1:${port}/ok`, { client });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  }

  it("answers an unknown or missing SNI name with the default site's certificate", async () => {
    expect(await servedCn(sni.port, "unknown.test")).toBe("CN=b.test");
    expect(await servedCn(sni.port, undefined)).toBe("CN=b.test");
    expect(await servedCn(sni.port, "a.test")).toBe("CN=a.test");
    expect(await servedCn(direct.port, "unknown.test")).toBe("CN=a.test");
  });

  it("ends garbage and plain HTTP on a TLS port without an HTTP answer", async () => {
    for (const port of [sni.port, direct.port]) {
      for (
        const bytes of [
          crypto.getRandomValues(new Uint8Array(300)),
          enc.encode("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        ]
      ) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(bytes);
          const first = await firstBytes(conn, 2000);
          // Deno's TLS sends a fatal TLS alert (21 = alert record); node:tls just closes.
          if (first !== "eof") expect(first[0]).toBe(21);
          expect(first).not.toBe("open");
        } finally {
          closeQuietly(conn);
        }
      }
      await goodStillWorks(port);
    }
  });

  for (const path of ["one-certificate", "SNI"] as const) {
    it(`the ${path} path closes a client silent past server.timeouts.tls_handshake, serving others`, async () => {
      const leaf = await pki.issue("a.test", ["DNS:a.test"]);
      const b = await pki.issue("b.test", ["DNS:b.test"]);
      const bws = await startBws(
        `[server.timeouts]\ntls_handshake = 0.3\n` + site("a", leaf) +
          (path === "SNI" ? site("b", b) : ""),
      );
      const silent = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
      try {
        const started = Date.now();
        expect(await firstBytes(silent, 3000)).toBe("eof");
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(250);
        expect(took).toBeLessThan(2000);
      } finally {
        closeQuietly(silent);
        await bws.close();
      }
    });
  }

  it("both TLS paths serve others while a client is silent in its handshake (default 10 s)", async () => {
    for (const port of [sni.port, direct.port]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        // Within the limit it stays open and others are served.
        expect(await firstBytes(conn, 500)).toBe("open");
        await goodStillWorks(port);
      } finally {
        conn.close();
      }
    }
  });
});

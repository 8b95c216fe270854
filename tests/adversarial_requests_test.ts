/**
 * Adversarial client bytes against a running bws (DEVELOPERS: "a bad request gets a 4xx and does
 * not disturb other connections"): request smuggling shapes, header injection, limits and path
 * tricks, sent raw over TCP while a well-behaved keep-alive client keeps getting right answers.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, rawRequest, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";

const H = "Host: localhost\r\n";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** One byte per char, so raw NUL, CR and 0x80+ bytes go out exactly. */
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const statusLines = (raw: string) => raw.match(/HTTP\/1\.[01] \d{3}/g) ?? [];

/** A keep-alive client on one connection that reads each answer by its Content-Length. */
class KeepAlive {
  #buf = "";
  #scratch = new Uint8Array(65536);
  private constructor(readonly conn: Deno.Conn) {}

  static async open(port: number): Promise<KeepAlive> {
    return new KeepAlive(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** GET /api/alive?n=<n>; returns the path the backend saw (after strip_prefix). */
  async ask(n: number): Promise<string> {
    await this.conn.write(bytes(`GET /api/alive?n=${n} HTTP/1.1\r\n${H}\r\n`));
    while (true) {
      const end = this.#buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.#buf.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
        if (this.#buf.length >= end + 4 + length) {
          const body = this.#buf.slice(end + 4, end + 4 + length);
          this.#buf = this.#buf.slice(end + 4 + length);
          expect(head).toMatch(/^HTTP\/1\.1 200/);
          return (JSON.parse(body) as Seen).path;
        }
      }
      const got = await this.conn.read(this.#scratch);
      if (got === null) throw new Error("Cannot read the keep-alive answer: connection closed");
      this.#buf += String.fromCharCode(...this.#scratch.subarray(0, got));
    }
  }

  close(): void {
    this.conn.close();
  }
}

describe("adversarial client requests against a running bws", () => {
  let backend: Backend;
  let bws: TestBws;
  let root: string;
  let alive: KeepAlive;
  let asked = 0;
  /** Trickle backend: bytes read and whether the body broke off. */
  const trickle = { bytes: 0, aborted: Promise.withResolvers<boolean>() };
  let trickleServer: Deno.HttpServer<Deno.NetAddr>;

  /** The keep-alive client still gets its own answer. */
  async function stillServed(): Promise<void> {
    const n = ++asked;
    expect(await alive.ask(n)).toBe(`/alive?n=${n}`);
  }

  /** Requests the backend saw since `from`. */
  const seenSince = (from: number) => backend.seen.slice(from).map((s) => s.path);

  before(async () => {
    backend = startEchoBackend("b");
    trickleServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      try {
        for await (const chunk of req.body!) trickle.bytes += chunk.byteLength;
        trickle.aborted.resolve(false);
      } catch {
        trickle.aborted.resolve(true);
      }
      return new Response("done");
    });
    const base = await Deno.makeTempDir({ prefix: "bws_adv_" });
    root = `${base}/root`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/index.html`, "<h1>home</h1>");
    await Deno.writeTextFile(`${base}/secret.txt`, "outside the root");
    bws = await startBws(`
[server]
grace_period = 1
max_body_size = "1MB"

[[sites]]
name = "main"
hostname = "localhost"
port = 0
bind = "127.0.0.1"
static_dir = "${root}"

[sites.proxy]
enabled = true
[sites.proxy.headers.add]
"X-Request-ID" = "auto"

[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"
[[sites.proxy.upstreams]]
name = "inner"
url = "${backend.url}/inner"
[[sites.proxy.upstreams]]
name = "t"
url = "http://127.0.0.1:${trickleServer.addr.port}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "b"
strip_prefix = true
[[sites.proxy.routes]]
path = "/base/"
upstream = "inner"
strip_prefix = true
[[sites.proxy.routes]]
path = "/raw"
upstream = "b"
[[sites.proxy.routes]]
path = "/trickle"
upstream = "t"

[[sites]]
name = "all"
hostname = "all.test"
port = 0
bind = "127.0.0.1"

[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "b"
url = "${backend.url}"
[[sites.proxy.routes]]
path = "/"
upstream = "b"
`);
    alive = await KeepAlive.open(bws.port);
    await stillServed();
  });

  after(async () => {
    alive.close();
    await bws.close();
    await backend.close();
    await trickleServer.shutdown();
    await Deno.remove(`${root}/..`, { recursive: true });
  });

  // Every shape carries a second request that must never reach the backend on its own.
  const SMUGGLED = `GET /api/smuggled HTTP/1.1\r\n${H}\r\n`;
  const REFUSED: [string, string][] = [
    [
      "Content-Length with Transfer-Encoding",
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    ],
    [
      "two different Content-Lengths",
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 44\r\n\r\n${SMUGGLED}`,
    ],
    [
      "Content-Length list 0, 44",
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 0, 44\r\n\r\n${SMUGGLED}`,
    ],
    ["Content-Length +0", `POST /api/x HTTP/1.1\r\n${H}Content-Length: +0\r\n\r\n${SMUGGLED}`],
    [
      "Transfer-Encoding: chunked, identity",
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    ],
    [
      "Transfer-Encoding: xchunked",
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    ],
    [
      "Transfer-Encoding: identity",
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n${SMUGGLED}`,
    ],
    [
      "Transfer-Encoding twice",
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    ],
    [
      "obs-fold Transfer-Encoding",
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 0\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n${SMUGGLED}`,
    ],
    [
      "space before the colon",
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n${SMUGGLED}`,
    ],
    ["NUL in a header value", `GET /api/x HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n${SMUGGLED}`],
    ["bare CR line ends", `GET /api/x HTTP/1.1\r${H.trim()}\rX-A: 1\r\r${SMUGGLED}`],
    [
      "CR inside X-Request-ID",
      `GET /api/x HTTP/1.1\r\n${H}X-Request-ID: a\rX-Forged: 1\r\n\r\n${SMUGGLED}`,
    ],
    ["HTTP/0.9 request line", `GET /api/x\r\n\r\n${SMUGGLED}`],
    ["bare LF line ends", `GET /api/lf HTTP/1.1\n${H.trim()}\nX-A: 1\n\n${SMUGGLED}`],
    ["raw space in the target", `GET /api/x y HTTP/1.1\r\n${H}\r\n${SMUGGLED}`],
    ["two Host headers", `GET /api/x HTTP/1.1\r\n${H}Host: evil\r\n\r\n${SMUGGLED}`],
  ];

  it("answers 400 (505 for HTTP/2.0) and closes for every smuggling shape, while a keep-alive client is served", async () => {
    const from = backend.seen.length;
    const shapes: [string, string, string][] = [
      ...REFUSED.map(([name, b]): [string, string, string] => [name, b, "400 Bad Request"]),
      [
        "HTTP/2.0 request line",
        `GET /api/x HTTP/2.0\r\n${H}\r\n${SMUGGLED}`,
        "505 HTTP Version Not Supported",
      ],
    ];
    const answers = await Promise.all([
      ...shapes.map(([, b]) => rawRequest(bws.port, bytes(b), 2000)),
      (async () => {
        for (let i = 0; i < 5; i++) await stillServed();
      })(),
    ]);
    shapes.forEach(([name, , status], i) => {
      const raw = answers[i] as string;
      expect([name, raw.split("\r\n")[0]]).toEqual([name, `HTTP/1.1 ${status}`]);
      expect([name, statusLines(raw).length]).toEqual([name, 1]);
      expect([name, /\r\nconnection: close\r\n/i.test(raw)]).toEqual([name, true]);
    });
    expect(seenSince(from).filter((p) => !p.startsWith("/alive"))).toEqual([]);
    await stillServed();
  });

  it("answers 400 and closes on a broken chunk size, never delivering the request", async () => {
    const from = backend.seen.length;
    for (const size of ["zz", "FFFFFFFFFFFFFFFFFFFFFF", "10000000000000003"]) {
      const t0 = performance.now();
      const raw = await rawRequest(
        bws.port,
        `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${size}\r\nabc\r\n0\r\n\r\n${SMUGGLED}`,
        2000,
      );
      expect([size, raw.split("\r\n")[0]]).toEqual([size, "HTTP/1.1 400 Bad Request"]);
      expect([size, statusLines(raw).length]).toEqual([size, 1]);
      expect(raw).toMatch(/\r\nconnection: close\r\n/i);
      expect(performance.now() - t0).toBeLessThan(1000);
    }
    await stillServed();
    expect(seenSince(from).filter((p) => !p.startsWith("/alive"))).toEqual([]);
  });

  it("answers 501 to transfer codings it cannot forward and to CONNECT", async () => {
    const from = backend.seen.length;
    const gz = await rawRequest(
      bws.port,
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      300,
    );
    expect(gz).toMatch(/^HTTP\/1\.1 501/);
    const connect = await rawRequest(
      bws.port,
      "CONNECT evil.test:443 HTTP/1.1\r\nHost: all.test\r\nConnection: close\r\n\r\n",
      2000,
    );
    expect(connect).toMatch(/^HTTP\/1\.1 501/);
    expect(seenSince(from)).toEqual([]);
    await stillServed();
  });

  it("reads identical duplicate Content-Lengths as one length (they used to eject the upstream)", async () => {
    for (let i = 0; i < 4; i++) {
      const raw = await rawRequest(
        bws.port,
        `POST /api/dup HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
        2000,
      );
      expect(raw).toMatch(/^HTTP\/1\.1 200/);
      const seen = JSON.parse(raw.split("\r\n\r\n")[1]) as Seen;
      expect([seen.path, seen.bodyLength]).toEqual(["/dup", 3]);
      expect(seen.headers).toContainEqual(["content-length", "3"]);
    }
    await stillServed();
  });

  it("accepts the valid shapes a strict parser allows, forwarding one clean request each", async () => {
    const one = async (b: string) => {
      const from = backend.seen.length;
      const raw = await rawRequest(bws.port, bytes(b), 2000);
      return { raw, seen: backend.seen.slice(from) };
    };
    // Leading empty lines before the request line are skipped (RFC 9112 §2.2).
    const lead = await one(`\r\n\r\nGET /api/lead HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(lead.raw).toMatch(/^HTTP\/1\.1 200/);
    expect(lead.seen.map((s) => s.path)).toEqual(["/lead"]);
    // Absolute form: the target's authority wins over Host (RFC 9112 §3.2.2) for routing and
    // for the Host sent upstream; the request goes upstream in origin form.
    const abs = await one(`GET http://all.test/abs HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(abs.seen.map((s) => s.path)).toEqual(["/abs"]);
    expect(abs.seen[0].headers).toContainEqual(["host", "all.test"]);
    // A fragment in the target goes upstream byte-for-byte, like the rest of the path.
    const frag = await one(`GET /api/f#x HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(frag.seen.map((s) => s.path)).toEqual(["/f#x"]);
    // OPTIONS *: about the server itself, answered by bws (as Go's server does), not forwarded.
    const star = await one(`OPTIONS * HTTP/1.1\r\nHost: all.test\r\nConnection: close\r\n\r\n`);
    expect(star.raw).toMatch(/^HTTP\/1\.1 200/);
    expect(star.raw).toMatch(/\r\nallow: /i);
    expect(star.seen).toEqual([]);
    // HTTP/1.0: answered (in HTTP/1.1, as RFC 9110 §2.5 asks) and closed.
    const old = await one(`GET /api/old HTTP/1.0\r\n${H}\r\n`);
    expect(old.raw).toMatch(/^HTTP\/1\.1 200/);
    expect(old.raw).toMatch(/\r\nconnection: close\r\n/i);
    // HTTP/1.0 without Host: the port's default site.
    const noHost = await one(`GET /api/nohost HTTP/1.0\r\n\r\n`);
    expect(noHost.raw).toMatch(/^HTTP\/1\.1 200/);
    expect(noHost.seen.map((s) => s.path)).toEqual(["/nohost"]);
    await stillServed();
  });

  it("replaces a malformed X-Request-ID and never logs or forwards it", async () => {
    const from = backend.seen.length;
    const bad = 'id "with" spaces<script>';
    const raw = await rawRequest(
      bws.port,
      `GET /api/rid HTTP/1.1\r\n${H}X-Request-ID: ${bad}\r\nConnection: close\r\n\r\n`,
      2000,
    );
    const id = /x-request-id: (.*)\r\n/i.exec(raw)?.[1] ?? "";
    expect(id).toMatch(UUID);
    expect(backend.seen.slice(from)[0].headers).toContainEqual(["x-request-id", id]);
    await sleep(20);
    const entry = bws.logger.entries.find((e) => e.path === "/api/rid")!;
    expect(entry.requestId).toBe(id);
    expect(JSON.stringify(bws.logger.entries)).not.toContain("<script>");
  });

  it("answers 400 to a Host that is not a host, and routes odd but valid ones", async () => {
    const from = backend.seen.length;
    for (
      const host of [
        "local host",
        "user@localhost",
        "evil/raw",
        "localhost/api",
        "h?x",
        "\xe9.test",
      ]
    ) {
      const raw = await rawRequest(
        bws.port,
        bytes(`GET /api/h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
        2000,
      );
      expect([host, raw.slice(0, 12)]).toEqual([host, "HTTP/1.1 400"]);
    }
    expect(seenSince(from)).toEqual([]);
    const long = "a".repeat(10_000);
    for (const host of ["localhost:99999", "[::1]:80", long]) {
      const raw = await rawRequest(
        bws.port,
        `GET /api/h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        2000,
      );
      expect([host.slice(0, 20), raw.slice(0, 12)]).toEqual([host.slice(0, 20), "HTTP/1.1 200"]);
      // localhost:99999 reaches the localhost site; the others the port's first site (also it).
      expect(backend.seen.at(-1)!.headers).toContainEqual(["host", host]);
    }
    await stillServed();
  });

  it("refuses 100 KB of headers and 10 000 header lines with 431", async () => {
    const big = await rawRequest(
      bws.port,
      `GET /api/x HTTP/1.1\r\n${H}X-Big: ${"a".repeat(100_000)}\r\n\r\n`,
      2000,
    );
    expect(big).toMatch(/^HTTP\/1\.1 431/);
    const many = await rawRequest(
      bws.port,
      `GET /api/x HTTP/1.1\r\n${H}${"X-A: 1\r\n".repeat(10_000)}\r\n`,
      2000,
    );
    expect(many).toMatch(/^HTTP\/1\.1 431/);
    await stillServed();
  });

  it("answers 413 to a 2 GB Content-Length at once, before the body is sent", async () => {
    const from = backend.seen.length;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      const t0 = performance.now();
      await conn.write(
        bytes(`POST /api/up HTTP/1.1\r\n${H}Content-Length: 2000000000\r\n\r\nxxxx`),
      );
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      const head = String.fromCharCode(...buf.subarray(0, n ?? 0));
      expect(head).toMatch(/^HTTP\/1\.1 413/);
      expect(head).toMatch(/connection: close/i);
      expect(performance.now() - t0).toBeLessThan(1000);
      // The body is never read: bws ends its side of the connection right after the answer.
      const next = await Promise.race([conn.read(buf), sleep(2000).then(() => "open")]);
      expect(next).toBe(null);
    } finally {
      conn.close();
    }
    expect(seenSince(from)).toEqual([]);
    await stillServed();
  });

  it("answers 413 with Connection: close and closes: a request behind the body is never served", async () => {
    const from = backend.seen.length;
    const length = 1_100_000;
    const raw = await rawRequest(
      bws.port,
      bytes(
        `POST /api/up HTTP/1.1\r\n${H}Content-Length: ${length}\r\n\r\n${"x".repeat(length)}` +
          `GET /api/after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      ),
      3000,
    );
    expect(statusLines(raw)).toEqual(["HTTP/1.1 413"]);
    expect(raw).toMatch(/connection: close/i);
    expect(seenSince(from)).toEqual([]);
  });

  it("streams a trickled body and passes the client's abort to the upstream", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: bws.port });
    try {
      await conn.write(bytes(`POST /trickle HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n`));
      for (let i = 0; i < 5; i++) {
        await conn.write(bytes("x".repeat(10)));
        await sleep(40);
        if (i === 2) await stillServed();
      }
      const deadline = Date.now() + 2000;
      while (trickle.bytes < 50 && Date.now() < deadline) await sleep(10);
      expect(trickle.bytes).toBe(50);
    } finally {
      conn.close();
    }
    const aborted = await Promise.race([trickle.aborted.promise, sleep(3000).then(() => "hang")]);
    expect(aborted).toBe(true);
    await stillServed();
  });

  it("answers pipelined requests in one write, in order", async () => {
    const from = backend.seen.length;
    const raw = await rawRequest(
      bws.port,
      `GET /api/p1 HTTP/1.1\r\n${H}\r\n` +
        `POST /api/p2 HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` +
        `GET /index.html HTTP/1.1\r\n${H}\r\n` +
        `GET /api/p3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      3000,
    );
    expect(statusLines(raw)).toEqual(Array(4).fill("HTTP/1.1 200"));
    const order = [...raw.matchAll(/"path":"(\/p\d)"|<h1>home<\/h1>/g)].map((m) =>
      m[1] ?? "static"
    );
    expect(order).toEqual(["/p1", "/p2", "static", "/p3"]);
    expect(seenSince(from)).toEqual(["/p1", "/p2", "/p3"]);
    expect(backend.seen.find((s) => s.path === "/p2")!.bodyLength).toBe(5);
  });

  it("refuses dot segments on proxy routes, so no prefix or base path can be climbed out of", async () => {
    const from = backend.seen.length;
    for (
      const path of [
        "/api/../secret",
        "/api/%2e%2e/secret",
        "/api/.%2E/secret",
        "/api/..%2Fsecret",
        "/api/..%5Csecret",
        "/api/..;x=1/secret",
        "/base/..",
        "/base/../../etc/passwd",
        "/raw/../api/x",
        "/api/./x",
      ]
    ) {
      const raw = await rawRequest(
        bws.port,
        `GET ${path} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
        2000,
      );
      expect([path, raw.slice(0, 12)]).toEqual([path, "HTTP/1.1 400"]);
      expect(raw).toMatch(/request id: [0-9a-f-]{36}/);
    }
    expect(seenSince(from)).toEqual([]);
    await stillServed();
  });

  it("passes other path tricks byte-for-byte and strip_prefix always leaves a leading /", async () => {
    const path = async (target: string) => {
      const from = backend.seen.length;
      const raw = await rawRequest(
        bws.port,
        `GET ${target} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
        2000,
      );
      return { status: raw.slice(9, 12), seen: seenSince(from) };
    };
    // Decoded once this is "%2e%2e", not a dot segment: the upstream decides.
    expect(await path("/api/%252e%252e/secret")).toEqual({
      status: "200",
      seen: ["/%252e%252e/secret"],
    });
    expect(await path("/api/a%2Fb")).toEqual({ status: "200", seen: ["/a%2Fb"] });
    // Not the /api/ route: "//api" and "/api%2F…" do not start with "/api/".
    expect(await path("//api/x")).toEqual({ status: "404", seen: [] });
    expect(await path("/api%2Fx")).toEqual({ status: "404", seen: [] });
    expect(await path("/api")).toEqual({ status: "200", seen: ["/"] });
    expect(await path("/api/")).toEqual({ status: "200", seen: ["/"] });
    expect(await path("/api?q=1")).toEqual({ status: "200", seen: ["/?q=1"] });
    expect(await path("/api//x")).toEqual({ status: "200", seen: ["//x"] });
    expect(await path("/base")).toEqual({ status: "200", seen: ["/inner/"] });
    expect(await path("/base?x")).toEqual({ status: "200", seen: ["/inner/?x"] });
    expect(await path("/base/a")).toEqual({ status: "200", seen: ["/inner/a"] });
  });

  it("keeps static files inside the root for the same tricks", async () => {
    for (
      const target of [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/.%2e/secret.txt",
        "/..%2fsecret.txt",
        "//../secret.txt",
      ]
    ) {
      const raw = await rawRequest(
        bws.port,
        `GET ${target} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
        2000,
      );
      expect([target, raw.slice(0, 12)]).toEqual([target, "HTTP/1.1 404"]);
      expect(raw).not.toContain("outside the root");
    }
    const raw = await rawRequest(
      bws.port,
      `GET /%2e/index.html HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      2000,
    );
    expect(raw).toContain("<h1>home</h1>");
    await stillServed();
  });
});

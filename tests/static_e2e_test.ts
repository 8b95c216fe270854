/**
 * End to end: the static handler behind bws's own HTTP/1.1 front end on a real socket, driven by
 * raw TCP bytes (so dot segments reach the server unnormalised), curl --path-as-is, and fetch
 * for large bodies; and the memory of a `bws DIR` process serving a 200 MB file.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { createStaticHandler } from "../src/static/handler.ts";
import { type ClientConnection, serveConnection } from "../src/http1/connection.ts";
import { fileURLToPath } from "node:url";
import { freePort } from "./helpers/pebble.ts";

let base = "";
let root = "";
let listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
let accepting: Promise<void>;
const connections = new Set<ClientConnection>();
let port = 0;
const BIG = 200 * 1024 * 1024;

/** Sends `GET <target>` byte for byte and returns the status and the whole response text. */
async function rawRequest(
  target: string,
  method = "GET",
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = `${method} ${target} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head));
    let text = "";
    const decoder = new TextDecoder();
    const buf = new Uint8Array(16 * 1024);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    return { status: Number(text.split(" ")[1]), text };
  } finally {
    conn.close();
  }
}

async function curl(args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "5", ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

/** `<status> <bytes received>` of a curl download of /big.bin with extra arguments. */
function curlSizes(args: string[], to = port): Promise<string> {
  const url = `http://127.0.0.1:${to}/big.bin`;
  return curl(["-o", "/dev/null", "-w", "%{http_code} %{size_download}", ...args, url]);
}

/** The bytes of small file `k` (1-16 KiB, a pattern of its own). */
function smallFile(k: number): Uint8Array {
  return new Uint8Array(1024 + k * 5000).map((_, i) => (i * (k + 3) + k) % 251);
}

const fdCount = () => [...Deno.readDirSync("/proc/self/fd")].length;

before(async () => {
  base = await Deno.makeTempDir({ prefix: "bws_static_e2e_" });
  root = `${base}/root`;
  await Deno.mkdir(`${root}/a`, { recursive: true });
  await Deno.mkdir(`${base}/etc`);
  await Deno.writeTextFile(`${root}/index.html`, "<h1>home</h1>");
  await Deno.writeTextFile(`${root}/a/page.txt`, "page");
  await Deno.writeTextFile(`${root}/.secret`, "dot secret");
  await Deno.writeTextFile(`${base}/etc/passwd`, "root:x:0:0:fixture secret");
  await Deno.symlink(`${base}/etc/passwd`, `${root}/link`);
  // Sparse: 200 MB of zeros without writing them.
  const big = await Deno.open(`${root}/big.bin`, { write: true, create: true });
  await big.truncate(BIG);
  big.close();

  const handler = createStaticHandler({ root, indexFile: "index.html" });
  const options = {
    handler,
    timeouts: { headerMs: 10_000, keepAliveMs: 10_000, bodyMs: 10_000, sendMs: 10_000 },
    limits: { maxHeaderSize: 16 * 1024, maxHeaders: 100 },
  };
  listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  port = listener.addr.port;
  accepting = (async () => {
    try {
      for await (const conn of listener) {
        const { hostname, port } = conn.remoteAddr;
        const c = serveConnection(conn, { hostname, port }, false, { options });
        connections.add(c);
        c.done.then(() => connections.delete(c));
      }
    } catch {
      // the listener was closed
    }
  })();
});

after(async () => {
  listener.close();
  await accepting;
  for (const c of connections) c.close();
  await Deno.remove(base, { recursive: true });
});

const TRAVERSALS = [
  "/../etc/passwd",
  "/../../../../../../etc/passwd",
  "/%2e%2e/etc/passwd",
  "/%2e%2e/",
  "/.%2E/etc/passwd",
  "/a/%2f..%2f",
  "/a/%2f..%2f..%2fetc/passwd",
  "/..%2f..%2fetc/passwd",
  "/a/..%5c..%5cetc/passwd",
  "/a/../../etc/passwd",
  "/link",
  "/.secret",
];

describe("static over a real server", () => {
  it("serves normal files and directory redirects over the wire", async () => {
    const home = await rawRequest("/");
    expect(home.status).toBe(200);
    expect(home.text).toContain("<h1>home</h1>");
    const page = await rawRequest("/a/./page.txt");
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/content-length: 4\r\n/i);
    const dir = await rawRequest("/a?q=1");
    expect(dir.status).toBe(301);
    expect(dir.text).toMatch(/location: \/a\/\?q=1\r\n/i);
  });

  it("gives every concurrent client its own file's exact bytes (pooled read buffers)", async () => {
    const expected = [0, 1, 2, 3].map(smallFile);
    // Written just now: read from disk into pooled buffers (a file is kept in memory only once
    // it has been left alone for two seconds).
    for (let k = 0; k < 4; k++) await Deno.writeFile(`${root}/small${k}.bin`, expected[k]);
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 16 });
    try {
      const worker = async (w: number) => {
        for (let i = 0; i < 40; i++) {
          const k = (w + i) % 4;
          const res = await fetch(`http://127.0.0.1:${port}/small${k}.bin`, { client });
          const body = new Uint8Array(await res.arrayBuffer());
          expect(res.status).toBe(200);
          expect(body.length).toBe(expected[k].length);
          expect(body.findIndex((b, j) => b !== expected[k][j])).toBe(-1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    } finally {
      client.close();
    }
  });

  it("never escapes the root for raw traversal bytes", async () => {
    for (const target of TRAVERSALS) {
      const { status, text } = await rawRequest(target);
      expect([target, status]).toEqual([target, 404]);
      expect(text).not.toContain("root:x");
      expect(text).not.toContain("dot secret");
    }
  });

  it("rejects invalid encodings and NUL bytes with 400 over the wire", async () => {
    for (const target of ["/%zz", "/index.html%00", "/%c3%28"]) {
      expect((await rawRequest(target)).status).toBe(400);
    }
  });

  it("never escapes the root for curl --path-as-is", async () => {
    for (const target of TRAVERSALS) {
      const out = await curl([
        "--path-as-is",
        "-w",
        "\n%{http_code}",
        `http://127.0.0.1:${port}${target}`,
      ]);
      expect([target, out.slice(out.lastIndexOf("\n") + 1)]).toEqual([target, "404"]);
      expect(out).not.toContain("root:x");
    }
  });

  it("curl gets ranges and 304s", async () => {
    const url = `http://127.0.0.1:${port}/a/page.txt`;
    expect(await curl(["-r", "1-2", url])).toBe("ag");
    const head = await curl(["-I", url]);
    const etag = /etag: (.+)\r\n/i.exec(head)![1];
    const code = await curl([
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-H",
      `If-None-Match: ${etag}`,
      url,
    ]);
    expect(code).toBe("304");
  });
});

/** VmRSS of a process, bytes. */
function rssOf(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

describe("static streaming of a 200 MB file", () => {
  it("sends Content-Length on GET and HEAD without chunking", async () => {
    const head = await rawRequest("/big.bin", "HEAD");
    expect(head.status).toBe(200);
    expect(head.text).toMatch(new RegExp(`content-length: ${BIG}\\r\\n`, "i"));
    expect(head.text.split("\r\n\r\n")[1]).toBe("");
  });

  // Memory is measured on `bws DIR` in its own process (run as the binary runs, with
  // --expose-gc): `deno test --parallel` runs test files in one process, so this process's RSS
  // also holds whatever the other files allocate meanwhile.
  describe("memory of a bws serving it (own process)", () => {
    let child: Deno.ChildProcess;
    let bwsPort = 0;
    before(async () => {
      bwsPort = freePort();
      const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          cli,
          root,
          "-p",
          `${bwsPort}`,
          "-b",
          "127.0.0.1",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const end = Date.now() + 15_000;
      while ((await curlSizes(["-I"], bwsPort)) !== "200 0") {
        if (Date.now() > end) throw new Error("bws DIR did not start");
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    after(async () => {
      child.kill("SIGTERM");
      await child.status;
    });

    it("streams GET, HEAD and open-ended ranges without growing RSS much", async () => {
      // curl is the client, in its own process, so only the server's memory is measured here.
      const rss0 = rssOf(child.pid);
      expect(await curlSizes([], bwsPort)).toBe(`200 ${BIG}`);
      expect(await curlSizes(["-I"], bwsPort)).toBe("200 0");
      expect(await curlSizes(["-r", "1000-"], bwsPort)).toBe(`206 ${BIG - 1000}`);
      const grown = rssOf(child.pid) - rss0;
      console.log(`bws rss growth, 400 MB full + open range: ${(grown / 1048576).toFixed(1)} MB`);
      expect(grown).toBeLessThan(32 * 1024 * 1024);
    });

    it("streams a bounded 190 MB range without buffering it", async () => {
      // Every chunk is read into the response's one pooled 64 KiB buffer: no garbage per chunk.
      const rss0 = rssOf(child.pid);
      expect(await curlSizes(["-r", `5-${190_000_000 + 4}`], bwsPort)).toBe("206 190000000");
      const grown = rssOf(child.pid) - rss0;
      console.log(`bws rss growth, 190 MB bounded range: ${(grown / 1048576).toFixed(1)} MB`);
      expect(grown).toBeLessThan(25 * 1024 * 1024);
    });
  });

  it("delivers the body to fetch with the announced Content-Length", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/big.bin`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(BIG));
    let total = 0;
    for await (const chunk of res.body!) total += chunk.length;
    expect(total).toBe(BIG);
  });

  it("streams a large range and frees the file when the client aborts mid-way", async () => {
    const ranged = await fetch(`http://127.0.0.1:${port}/big.bin`, {
      headers: { range: `bytes=${BIG - 10_000_000}-` },
    });
    expect(ranged.status).toBe(206);
    let total = 0;
    for await (const chunk of ranged.body!) total += chunk.length;
    expect(total).toBe(10_000_000);

    const fds0 = fdCount();
    for (const range of [undefined, "bytes=100-"]) {
      for (let i = 0; i < 5; i++) {
        const ctl = new AbortController();
        const res = await fetch(`http://127.0.0.1:${port}/big.bin`, {
          signal: ctl.signal,
          headers: range ? { range } : {},
        });
        const reader = res.body!.getReader();
        await reader.read();
        ctl.abort();
        await reader.cancel().catch(() => {});
      }
    }
    // The server notices the closed connections asynchronously.
    const deadline = Date.now() + 3000;
    while (fdCount() > fds0 + 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(fdCount()).toBeLessThanOrEqual(fds0 + 2);
    // And the server still serves.
    expect((await rawRequest("/a/page.txt")).status).toBe(200);
  });
});

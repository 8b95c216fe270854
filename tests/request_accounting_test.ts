/**
 * Every request is logged once and counted (SPEC 7), and a member stays in flight until its
 * response body has gone out (SPEC 5): early answers (missing Host, http_port redirect and 404),
 * streamed and HEAD byte counts, chunked uploads, and slow downloads over the SNI TLS path.
 *
 * @module
 */

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { TestPki } from "./helpers/test_pki.ts";
import type { AccessEntry } from "../src/log/types.ts";
import { type Backend, deadAddress, rawRequest, startEchoBackend } from "./helpers/backends.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";
import { memberStats } from "./helpers/balancing.ts";
import { parseProm } from "./helpers/prom_parse.ts";
import { freePort } from "./helpers/pebble.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MANAGEMENT = "[management]\nenabled = true\nport = 0\n";
const SIZED = 1234;
const SLOW_CHUNKS = 8;
const SLOW_CHUNK_MS = 60;

/** A stream of `total` bytes in 1000-byte chunks, each after `delayMs`. */
function chunks(total: number, delayMs = 0): ReadableStream<Uint8Array> {
  let left = total;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (delayMs > 0) await sleep(delayMs);
      if (left <= 0) return c.close();
      const n = Math.min(1000, left);
      left -= n;
      c.enqueue(new Uint8Array(n).fill(120));
    },
  });
}

/** The echo backend plus /chunked/N (chunked body of N bytes), /sized and /slow downloads. */
function startBackend(): Backend {
  return startEchoBackend("a", (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/chunked/")) return new Response(chunks(Number(path.slice(9))));
    if (path === "/sized") return new Response("y".repeat(SIZED));
    if (path === "/slow") return new Response(chunks(SLOW_CHUNKS * 1000, SLOW_CHUNK_MS));
    return undefined;
  });
}

/** The access entries for `path`, once at least one arrived (and a moment for duplicates). */
async function entriesFor(bws: TestBws, path: string): Promise<AccessEntry[]> {
  const of = () => bws.logger.entries.filter((e) => e.path === path);
  for (let i = 0; i < 100 && of().length === 0; i++) await sleep(20);
  await sleep(50);
  return of();
}

async function metrics(bws: TestBws) {
  const addr = bws.handle.managementAddress!;
  const res = await fetch(`http://${addr.hostname}:${addr.port}/metrics`);
  return parseProm(await res.text());
}

function tlsSite(
  name: string,
  port: number,
  cert: string,
  key: string,
  backend: string,
  extra = "",
) {
  return `
[[sites]]
name = "${name}"
hostname = "${name}.test"
port = ${port}
bind = "127.0.0.1"

[sites.ssl]
enabled = true
cert_file = "${cert}"
key_file = "${key}"
${extra}

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${backend}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
}

describe("request accounting: access log, metrics, in-flight", () => {
  let backend: Backend;
  let pki: TestPki;
  const open: TestBws[] = [];

  before(async () => {
    backend = startBackend();
    pki = await TestPki.create();
  });
  after(async () => {
    for (const b of open) await b.close();
    await backend.close();
    await pki.remove();
  });

  it("logs and counts a request without Host (400) once, with site -", async () => {
    const bws = await startBws(proxySite([backend.url], "", undefined, "") + MANAGEMENT);
    open.push(bws);
    const raw = await rawRequest(bws.port, "GET /nohost?q=1 HTTP/1.1\r\n\r\n", 2000);
    expect(raw).toMatch(/^HTTP\/1.1 400/);
    const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
    const lines = await entriesFor(bws, "/nohost?q=1");
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ site: "-", status: 400, upstream: "", method: "GET" });
    // How long the answer took, not the time since the process started.
    expect(lines[0].durationMs).toBeLessThan(200);
    expect(lines[0].bytesOut).toBe(body.length);
    expect(lines[0].bytesOut).toBeGreaterThan(0);
    const m = await metrics(bws);
    expect(m.value("bws_requests_total", { site: "-", route: "", code: "4xx" })).toBe(1);
  });

  it("counts the bytes of streamed (chunked) and HEAD responses and chunked uploads", async () => {
    const bws = await startBws(proxySite([backend.url], "", undefined, "") + MANAGEMENT);
    open.push(bws);
    const n = 100_000;
    const res = await fetch(bws.url(`/chunked/${n}`));
    expect(res.headers.get("content-length")).toBe(null);
    expect((await res.arrayBuffer()).byteLength).toBe(n);
    const [streamed] = await entriesFor(bws, `/chunked/${n}`);
    expect(streamed.bytesOut).toBe(n);

    const got = await fetch(bws.url("/sized"));
    expect((await got.text()).length).toBe(SIZED);
    const head = await fetch(bws.url("/sized"), { method: "HEAD" });
    await head.body?.cancel();
    expect(head.status).toBe(200);
    const sized = await entriesFor(bws, "/sized");
    expect(sized.map((e) => [e.method, e.bytesOut])).toEqual([["GET", SIZED], ["HEAD", 0]]);

    const before = (await metrics(bws)).value("bws_bytes_received_total", { site: "s" }) ?? 0;
    const up = await fetch(bws.url("/upload"), {
      method: "POST",
      body: chunks(30_000),
      duplex: "half",
    } as RequestInit);
    expect(((await up.json()) as { bodyLength: number }).bodyLength).toBe(30_000);
    await entriesFor(bws, "/upload");
    const m = await metrics(bws);
    expect(m.value("bws_bytes_received_total", { site: "s" })).toBe(before + 30_000);
    expect(m.value("bws_bytes_sent_total", { site: "s" })).toBeGreaterThanOrEqual(n + SIZED);
  });

  it("logs the bytes of the answers bws makes itself (502, 404)", async () => {
    const bws = await startBws(proxySite([deadAddress()], "", undefined, ""));
    open.push(bws);
    const bad = await fetch(bws.url("/api/x"));
    expect(bad.status).toBe(502);
    const badBody = await bad.arrayBuffer();
    const [e502] = await entriesFor(bws, "/api/x");
    expect(e502.bytesOut).toBe(badBody.byteLength);
    expect(e502.bytesOut).toBeGreaterThan(0);
    const headBad = await fetch(bws.url("/api/y"), { method: "HEAD" });
    await headBad.body?.cancel();
    const [eHead] = await entriesFor(bws, "/api/y");
    expect([eHead.status, eHead.bytesOut]).toEqual([502, 0]);
  });

  it("logs and counts the http_port redirect and its 404 once each, under the TLS site", async () => {
    const leaf = await pki.issue("a.test", ["DNS:a.test"]);
    const httpsPort = freePort();
    const httpPort = freePort();
    const bws = await startBws(
      "[server]\ngrace_period = 1\n" + MANAGEMENT +
        tlsSite(
          "a",
          httpsPort,
          leaf.certFile,
          leaf.keyFile,
          backend.url,
          `redirect_http = true\nhttp_port = ${httpPort}\n`,
        ),
    );
    open.push(bws);
    const r = await rawRequest(
      httpPort,
      "GET /moved?x=1 HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n",
    );
    expect(r).toMatch(/^HTTP\/1.1 308/);
    const moved = await entriesFor(bws, "/moved?x=1");
    expect(moved.length).toBe(1);
    expect(moved[0]).toMatchObject({ site: "a", status: 308, upstream: "", bytesOut: 0 });

    const acme = "/.well-known/acme-challenge/unknown";
    const c = await rawRequest(
      httpPort,
      `GET ${acme} HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n`,
    );
    expect(c).toMatch(/^HTTP\/1.1 404/);
    const missing = await entriesFor(bws, acme);
    expect(missing.length).toBe(1);
    expect(missing[0]).toMatchObject({ site: "a", status: 404, upstream: "" });
    expect(missing[0].bytesOut).toBe(c.length - c.indexOf("\r\n\r\n") - 4);

    const m = await metrics(bws);
    expect(m.value("bws_requests_total", { site: "a", route: "", code: "3xx" })).toBe(1);
    expect(m.value("bws_requests_total", { site: "a", route: "", code: "4xx" })).toBe(1);
  });

  it("keeps the member in flight until a slow download over SNI TLS has been sent", async () => {
    const la = await pki.issue("a.test", ["DNS:a.test"]);
    const lb = await pki.issue("b.test", ["DNS:b.test"]);
    const bws = await startBws(
      "[server]\ngrace_period = 1\n" + MANAGEMENT +
        tlsSite("a", 0, la.certFile, la.keyFile, backend.url) +
        tlsSite("b", 0, lb.certFile, lb.keyFile, backend.url),
    );
    open.push(bws);
    expect(bws.handle.addresses.length).toBe(1);
    const port = bws.port;
    const total = SLOW_CHUNKS * 1000;
    const bodyMs = SLOW_CHUNKS * SLOW_CHUNK_MS;

    let done = 0;
    for (const proto of ["--http1.1", "--http2"]) {
      const child = new Deno.Command("curl", {
        args: [
          "-sS",
          "--max-time",
          "5",
          proto,
          "--cacert",
          pki.caFile,
          "--resolve",
          `a.test:${port}:127.0.0.1`,
          "-o",
          "/dev/null",
          "-w",
          "%{size_download}",
          `https://a.test:${port}/slow`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        // Midway through the body the member still counts the request.
        await sleep(bodyMs / 2);
        const during = await memberStats(bws);
        expect(during.reduce((s, x) => s + x.inFlight, 0)).toBe(1);
      } finally {
        const out = await child.output();
        expect(new TextDecoder().decode(out.stderr)).toBe("");
        expect(new TextDecoder().decode(out.stdout)).toBe(String(total));
      }
      const slow = () => bws.logger.entries.filter((x) => x.path === "/slow");
      for (let i = 0; i < 50 && slow().length < done + 1; i++) await sleep(20);
      expect(slow().length).toBe(++done);
      const e = slow()[done - 1];
      expect(e.bytesOut).toBe(total);
      // The duration covers the body, not just the head.
      expect(e.durationMs).toBeGreaterThanOrEqual(bodyMs * 0.8);
      const after = await memberStats(bws);
      expect(after.reduce((s, x) => s + x.inFlight, 0)).toBe(0);
    }
  });
});

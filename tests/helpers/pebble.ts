/**
 * The Pebble ACME test CA for end-to-end tests: Pebble's own HTTPS certificate (openssl), a tiny
 * DNS responder that resolves every name to 127.0.0.1, and the Pebble process itself.
 *
 * @module
 */

import { createSocket, type Socket } from "node:dgram";
import { join } from "node:path";
import { makeCa, NEW_P256_KEY, openssl } from "./test_pki.ts";
import { waitFor } from "./wait.ts";

/** Where Debian's `pebble` package installs the binary. */
export const PEBBLE = "/usr/bin/pebble";

/** True when Pebble is installed; tests skip with a message otherwise. */
export const hasPebble: boolean = await Deno.stat(PEBBLE).then(() => true, () => false);

/** A DNS responder: A 127.0.0.1 for every name, no records for other types. */
export interface DnsResponder {
  readonly port: number;
  /** While closed, queries are held (not answered) until {@link DnsResponder.open}. */
  hold(): void;
  /** Answers every held query and the ones after it. */
  open(): void;
  /** Queries received so far. */
  readonly queries: number;
  close(): void;
}

/** Starts a UDP DNS responder on 127.0.0.1 (see {@link DnsResponder}). */
export async function startDns(): Promise<DnsResponder> {
  const socket: Socket = createSocket("udp4");
  let holding = false;
  let queries = 0;
  const held: (() => void)[] = [];
  socket.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    queries++;
    let end = 12;
    while (end < msg.length && msg[end] !== 0) end += msg[end] + 1;
    const qEnd = end + 5; // zero label, QTYPE, QCLASS
    if (qEnd > msg.length) return;
    const qtype = msg.readUInt16BE(end + 1);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // ID
    header.writeUInt16BE(0x8180 | (msg.readUInt16BE(2) & 0x7800), 2); // QR RD RA, opcode
    header.writeUInt16BE(1, 4); // QDCOUNT
    header.writeUInt16BE(qtype === 1 ? 1 : 0, 6); // ANCOUNT
    const parts = [header, msg.subarray(12, qEnd)];
    if (qtype === 1) {
      // Name pointer to offset 12, TYPE A, CLASS IN, TTL 60, RDLENGTH 4, 127.0.0.1.
      parts.push(Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]));
    }
    const answer = () => socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
    if (holding) held.push(answer);
    else answer();
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    hold: () => void (holding = true),
    open() {
      holding = false;
      for (const answer of held.splice(0)) answer();
    },
    get queries() {
      return queries;
    },
    close: () => socket.close(),
  };
}

/** Ports handed out by {@link freePort} in this test worker. */
const handedOut = new Set<number>();

/**
 * A loopback port that was free a moment ago, for a server started later. Chosen below the
 * kernel's ephemeral range (32768-60999 here), where the source port of an outgoing connection
 * never lands: a port from `port: 0` could be taken by one of the many connections the other
 * tests open before the server binds it (seen as "address in use" about once in seven runs).
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A CA and a 127.0.0.1 server certificate for Pebble's own HTTPS listener; returns the CA PEM. */
export async function makeListenerCert(dir: string): Promise<string> {
  await makeCa(dir, "ca.key", "ca.pem", 2, "bws test ca");
  await openssl(dir, [
    "req",
    ...NEW_P256_KEY,
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=localhost",
  ]); // deno-fmt-ignore
  await Deno.writeTextFile(
    join(dir, "ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]); // deno-fmt-ignore
  return await Deno.readTextFile(join(dir, "ca.pem"));
}

/** A running Pebble. */
export interface Pebble {
  /** The temp directory holding Pebble's files (removed by close). */
  readonly dir: string;
  readonly directoryUrl: string;
  readonly managementUrl: string;
  /** The CA that signed Pebble's own HTTPS certificate (PEM), and its file. */
  readonly caPem: string;
  readonly caFile: string;
  readonly dns: DnsResponder;
  /** A fetch client trusting {@link Pebble.caPem}. */
  readonly http: Deno.HttpClient;
  /** Orders Pebble has created so far (`POST /order-plz` requests, read from its log). */
  orders(): Promise<number>;
  /** Pebble's root and first intermediate (PEM), from its management API. */
  root(): Promise<string>;
  intermediate(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts Pebble validating HTTP-01 on `httpPort` (of 127.0.0.1, through its own DNS responder),
 * without its random validation sleep.
 */
export async function startPebble(httpPort: number): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "bws_pebble_" });
  const caPem = await makeListenerCert(dir);
  const dns = await startDns();
  const acmePort = freePort();
  const mgmtPort = freePort();
  await Deno.writeTextFile(
    join(dir, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, "cert.pem"),
        privateKey: join(dir, "key.pem"),
        httpPort,
        tlsPort: freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const child = new Deno.Command(PEBBLE, {
    args: ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dns.port}`],
    env: { PEBBLE_VA_NOSLEEP: "1", PEBBLE_AUTHZREUSE: "0", PEBBLE_WFE_NONCEREJECT: "0" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  // Pebble logs each request on stdout; only order creations are counted.
  let orders = 0;
  const logged = (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      orders += lines.filter((l) => l.includes("POST /order-plz")).length;
    }
  })().catch(() => {});
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const managementUrl = `https://127.0.0.1:${mgmtPort}`;
  const http = Deno.createHttpClient({ caCerts: [caPem] });
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await logged;
    dns.close();
    http.close();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await waitFor("Pebble's directory", 10_000, async () => {
      try {
        const res = await fetch(directoryUrl, { client: http });
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    }, 50);
  } catch (err) {
    await close();
    throw err;
  }
  const get = async (path: string) =>
    await (await fetch(managementUrl + path, { client: http })).text();
  return {
    dir,
    directoryUrl,
    managementUrl,
    caPem,
    caFile: join(dir, "ca.pem"),
    dns,
    http,
    orders: () => Promise.resolve(orders),
    root: () => get("/roots/0"),
    intermediate: () => get("/intermediates/0"),
    close,
  };
}

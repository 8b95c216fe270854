/**
 * Test helper: a WebSocket front without bws around it, for the tunnel tests and benchmark. It
 * pairs an upgrade by hand (reads the client's request head, forwards it to the upstream over
 * TCP, forwards the 101 head back) and then calls `startTunnel`, or, as the benchmark's floor,
 * copies bytes with one reused buffer per direction. Loopback only.
 *
 * Run as a program it is the front for another process:
 * `deno run -A tests/helpers/ws_tunnel_front.ts <upstream port> [tunnel|raw]` prints
 * `{"port":N}` and serves until its stdin closes.
 *
 * @module
 */

import {
  startTunnel,
  type TunnelCloseInfo,
  type TunnelOptions,
} from "../../src/websocket/tunnel.ts";
import { WebSocketRegistry } from "../../src/websocket/websocket_registry.ts";
import { closeQuietly, readHead, writeAll } from "./ws_frames.ts";

const encoder = new TextEncoder();

/** What a paired upgrade hands on: both streams and what was read past each head. */
export type PairHandler = (
  client: Deno.Conn,
  clientRest: Uint8Array,
  upstream: Deno.Conn,
  upstreamRest: Uint8Array,
) => void;

/** A front that pairs upgrades and hands each pair to `onPair`. */
export interface Front {
  readonly port: number;
  readonly url: string;
  close(): void;
}

/** Accepts on an ephemeral port; for each connection forwards the request head to
 * `upstreamPort`, the answer head back, and calls `onPair` after a 101 (else closes both). */
export function startFront(upstreamPort: number, onPair: PairHandler): Front {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairing = async (client: Deno.TcpConn) => {
    let upstream: Deno.TcpConn | undefined;
    try {
      client.setNoDelay(true);
      const request = await readHead(client);
      if (request === null) throw new Error("no request head");
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort });
      upstream.setNoDelay(true);
      await writeAll(upstream, encoder.encode(request.head));
      const answer = await readHead(upstream);
      if (answer === null) throw new Error("no answer head");
      await writeAll(client, encoder.encode(answer.head));
      if (!answer.head.startsWith("HTTP/1.1 101")) throw new Error("not upgraded");
      // Bytes the client sent with its head belong upstream; the tunnel relays them first.
      onPair(client, request.rest, upstream, answer.rest);
    } catch {
      closeQuietly(client);
      if (upstream) closeQuietly(upstream);
    }
  };
  (async () => {
    for await (const conn of listener) void pairing(conn);
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    close: () => closeQuietly(listener),
  };
}

/** A front whose pairs run through `startTunnel`. */
export interface TunnelFront extends Front {
  readonly registry: WebSocketRegistry;
  /** `onClose` reports in order. */
  readonly closed: TunnelCloseInfo[];
  /** Tunnels started. */
  readonly started: number;
}

export function startTunnelFront(
  upstreamPort: number,
  overrides: Partial<TunnelOptions> = {},
): TunnelFront {
  const registry = new WebSocketRegistry();
  const closed: TunnelCloseInfo[] = [];
  let started = 0;
  const front = startFront(upstreamPort, (client, clientRest, upstream, upstreamRest) => {
    started++;
    startTunnel(client, clientRest, upstream, upstreamRest, {
      idleTimeoutMs: 0,
      pingIntervalMs: 0,
      maxMessage: 16 * 1024 * 1024,
      registry,
      onClose: (info) => closed.push(info),
      ...overrides,
    });
  });
  return {
    ...front,
    registry,
    closed,
    get started() {
      return started;
    },
  };
}

/** The benchmark floor: copies bytes each way with one reused buffer, nothing else. */
export function startRawRelayFront(upstreamPort: number, bufferSize = 32 * 1024): Front {
  const copy = async (from: Deno.Conn, to: Deno.Conn, first: Uint8Array) => {
    const buf = new Uint8Array(bufferSize);
    try {
      await writeAll(to, first);
      for (let n = await from.read(buf); n !== null; n = await from.read(buf)) {
        for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* either side went away */ }
    closeQuietly(from);
    closeQuietly(to);
  };
  return startFront(upstreamPort, (client, clientRest, upstream, upstreamRest) => {
    void copy(client, upstream, clientRest);
    void copy(upstream, client, upstreamRest);
  });
}

if (import.meta.main) {
  const [upstreamPort, mode = "tunnel", bufferSize = "32768"] = Deno.args;
  const front = mode === "raw"
    ? startRawRelayFront(Number(upstreamPort), Number(bufferSize))
    : startTunnelFront(Number(upstreamPort), { bufferSize: Number(bufferSize) });
  console.log(JSON.stringify({ port: front.port }));
  for await (const _ of Deno.stdin.readable) { /* runs until stdin closes */ }
  front.close();
  Deno.exit(0);
}

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import {
  closeClient,
  openClient,
  openRawClient,
  type RawClient,
  startEchoUpstream,
  startRawUpstream,
  type TestClient,
} from "./helpers/ws_peers.ts";
import { waitFor, withTimeout } from "./helpers/wait.ts";
import { closePayload, encodeFrame } from "./helpers/ws_frames.ts";
import { startTunnelFront, type TunnelFront } from "./helpers/ws_tunnel_front.ts";
import { tunnelTicker } from "../src/websocket/tunnel_ticker.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (s: string, mask = true) => encodeFrame({ opcode: 1, payload: s, mask });
const close = (code: number, reason = "", mask = true) =>
  encodeFrame({ opcode: 8, payload: closePayload(code, reason), mask });

/** Reads a raw client's connection to its end; returns how many bytes came after the 101. */
async function bytesUntilEof(client: RawClient): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  let total = client.rest.length;
  for (let n = await client.conn.read(buf); n !== null; n = await client.conn.read(buf)) total += n;
  return total;
}

describe("WebSocket tunnel: messages", () => {
  const echo = startEchoUpstream();
  let front: TunnelFront;
  before(() => {
    front = startTunnelFront(echo.port);
  });
  after(async () => {
    await front.registry.closeAll(1001, "test over", 1000);
    front.close();
    await echo.close();
  });

  it("keeps 10 000 small text and binary messages in order both ways, and counts them", async () => {
    const client = await openClient(`${front.url}/many`);
    const before = front.closed.length;
    try {
      for (let i = 0; i < 10_000; i++) {
        client.socket.send(i % 2 === 0 ? `m${i}` : new Uint8Array([i & 0xff, i >> 8]));
      }
      for (let i = 0; i < 10_000; i++) {
        const got = await withTimeout(client.next(), 5000, `message ${i}`);
        if (i % 2 === 0) {
          if (got !== `m${i}`) throw new Error(`message ${i} is ${String(got)}`);
        } else {
          const bytes = new Uint8Array(got as ArrayBuffer);
          if (bytes[0] !== (i & 0xff) || bytes[1] !== i >> 8) throw new Error(`message ${i}`);
        }
      }
    } finally {
      await closeClient(client);
    }
    await waitFor("tunnel closed", 3000, () => front.closed.length === before + 1);
    const info = front.closed[before];
    expect(info.messagesIn).toBe(10_000);
    expect(info.messagesOut).toBe(10_000);
    expect(info.code).toBe(1005); // Deno's close() without a code sends an empty close frame
  });

  it("relays a 1 MB binary message intact both ways", async () => {
    const client = await openClient(`${front.url}/big`);
    try {
      const big = new Uint8Array(1_000_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      client.socket.send(big);
      const got = new Uint8Array(await withTimeout(client.next(), 5000, "echo") as ArrayBuffer);
      expect(got.length).toBe(big.length);
      expect(got.every((b, i) => b === big[i])).toBe(true);
    } finally {
      await closeClient(client);
    }
  });

  it("holds small buffers while quiet, full-size ones only while a burst flows", async () => {
    const client = await openClient(`${front.url}/burst`);
    const SMALL = 2 * (16 + 4096);
    try {
      await waitFor("the tunnel", 2000, () => front.registry.size > 0);
      expect(front.registry.bufferBytes()).toBeLessThanOrEqual(SMALL);
      const big = new Uint8Array(3_000_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      client.socket.send(big);
      const got = new Uint8Array(await withTimeout(client.next(), 5000, "echo") as ArrayBuffer);
      expect(got.length).toBe(big.length);
      expect(got.every((b, i) => b === big[i])).toBe(true);
      // Quiet again: short messages until both directions are back to small buffers.
      for (let i = 0; i < 40 && front.registry.bufferBytes() > SMALL; i++) {
        client.socket.send(`m${i}`);
        expect(await withTimeout(client.next(), 2000, `m${i}`)).toBe(`m${i}`);
      }
      expect(front.registry.bufferBytes()).toBeLessThanOrEqual(SMALL);
    } finally {
      await closeClient(client);
    }
  });

  it("relays bytes that came with the request head first (raw client)", async () => {
    const client = await openRawClient(front.port, "/early", text("early"));
    try {
      await client.send(text("second"));
      const first = await client.frames.next();
      const second = await client.frames.next();
      expect(new TextDecoder().decode(first!.payload)).toBe("early");
      expect(new TextDecoder().decode(second!.payload)).toBe("second");
      expect(first!.masked).toBe(false);
    } finally {
      client.close();
    }
  });
});

describe("WebSocket tunnel: close codes pass through untouched", () => {
  const echo = startEchoUpstream();
  let front: TunnelFront;
  before(() => {
    front = startTunnelFront(echo.port);
  });
  after(async () => {
    await front.registry.closeAll(1001, "test over", 1000);
    front.close();
    await echo.close();
  });

  for (const [code, reason] of [[1000, ""], [1001, "going"], [1008, "policy"], [4000, "bye"]]) {
    it(`client to upstream: ${code} "${reason}"`, async () => {
      const client = await openRawClient(front.port, `/c${code}`);
      try {
        await waitFor("upstream socket", 2000, () => echo.sockets.length > 0);
        await client.send(close(code as number, reason as string));
        expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
          code,
          reason,
        });
        // Deno's server side answers with the same code, which reaches the client.
        expect(await withTimeout(client.frames.nextClose(), 3000, "close reply")).toEqual({
          code,
          reason,
        });
        // …and then the tunnel closes the client's connection.
        expect(await withTimeout(client.frames.next(), 3000, "EOF")).toBe(null);
      } finally {
        client.close();
      }
    });

    it(`upstream to client: ${code} "${reason}"`, async () => {
      const opened = echo.sockets.length;
      const client = await openClient(`${front.url}/u${code}`);
      try {
        await waitFor("upstream socket", 2000, () => echo.sockets.length > opened);
        const upstream = echo.sockets[opened];
        await waitFor("upstream open", 2000, () => upstream.readyState === WebSocket.OPEN);
        upstream.close(code as number, reason as string);
        expect(await withTimeout(client.closed, 3000, "client close")).toEqual({ code, reason });
        await withTimeout(echo.nextClose(), 3000, "upstream closed");
      } finally {
        await closeClient(client);
      }
    });
  }

  it("reports the first close code and reason, and forgets the tunnel", async () => {
    const before = front.closed.length;
    const client = await openClient(`${front.url}/report`);
    client.socket.close(4321, "done here");
    expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
      code: 4321,
      reason: "done here",
    });
    await withTimeout(echo.nextClose(), 3000, "upstream close");
    await waitFor("tunnel closed", 3000, () => front.closed.length === before + 1);
    expect(front.closed[before]).toMatchObject({ code: 4321, reason: "done here" });
    expect(front.closed[before].error).toBeUndefined();
    await waitFor("registry empty", 3000, () => front.registry.size === 0);
  });
});

describe("WebSocket tunnel: a side that goes away", () => {
  it("closes the client with 1011 when the upstream drops between frames", async () => {
    const upstream = startRawUpstream(async (conn) => {
      await conn.write(text("hi", false));
      await sleep(50);
      conn.close();
    });
    const front = startTunnelFront(upstream.port);
    try {
      const client = await openClient(`${front.url}/drop`);
      expect(await withTimeout(client.next(), 2000, "greeting")).toBe("hi");
      expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
        code: 1011,
        reason: "upstream went away",
      });
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(front.closed[0]).toMatchObject({ code: 1006, reason: "upstream went away" });
    } finally {
      front.close();
      upstream.close();
    }
  });

  it("closes the client's connection without a close frame when the upstream drops mid-frame", async () => {
    const upstream = startRawUpstream(async (conn) => {
      const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(1000) });
      await conn.write(frame.subarray(0, 500));
      await sleep(50);
      conn.close();
    });
    const front = startTunnelFront(upstream.port);
    let client: RawClient | undefined;
    try {
      client = await openRawClient(front.port, "/midframe");
      // The half frame arrives, then EOF: a close frame here would corrupt the stream.
      expect(await withTimeout(bytesUntilEof(client), 3000, "EOF")).toBe(500);
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
    } finally {
      client?.close();
      front.close();
      upstream.close();
    }
  });

  it("closes the upstream and forgets the tunnel when the client vanishes mid-message", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port);
    try {
      const client = await openRawClient(front.port, "/vanish");
      const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(5000), mask: true });
      await client.send(frame.subarray(0, 2000));
      await sleep(50);
      client.close();
      // A connection that ends inside a frame: Deno reports 1006, or 0 for a truncated frame.
      const closed = await withTimeout(echo.nextClose(), 3000, "upstream close");
      expect([0, 1006]).toContain(closed.code);
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(front.closed[0]).toMatchObject({ code: 1006, reason: "client went away" });
    } finally {
      front.close();
      await echo.close();
    }
  });

  it("tells the upstream 1001 when the client vanishes between frames", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port);
    try {
      const client = await openRawClient(front.port, "/gone");
      await client.send(text("last words"));
      expect(new TextDecoder().decode((await client.frames.next())!.payload)).toBe("last words");
      client.close();
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1001,
        reason: "client went away",
      });
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
    } finally {
      front.close();
      await echo.close();
    }
  });
});

describe("WebSocket tunnel: protocol checks", () => {
  const echo = startEchoUpstream();
  after(() => echo.close());

  it("closes a client that sends an unmasked frame with 1002, and the upstream with 1000", async () => {
    const front = startTunnelFront(echo.port);
    try {
      const client = await openRawClient(front.port, "/unmasked");
      await client.send(text("fine"));
      expect(new TextDecoder().decode((await client.frames.next())!.payload)).toBe("fine");
      await client.send(text("not masked", false));
      expect(await withTimeout(client.frames.nextClose(), 3000, "client close")).toEqual({
        code: 1002,
        reason: "protocol error",
      });
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "client protocol error",
      });
      client.close();
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(front.closed[0]).toMatchObject({ code: 1002, reason: "client protocol error" });
      expect(front.closed[0].error).toMatchObject({ kind: "protocol", side: "client" });
      expect(front.closed[0].error?.message).toContain("unmasked frame");
      expect(front.closed[0].messagesIn).toBe(1);
    } finally {
      front.close();
    }
  });

  it("closes an upstream that sends a masked frame with 1002, and the client with 1001", async () => {
    let upstreamClose: Promise<{ code: number; reason: string } | null> | undefined;
    const upstream = startRawUpstream(async (conn, frames) => {
      upstreamClose = frames.nextClose();
      await conn.write(text("fine", false));
      await conn.write(text("masked by a server", true));
    });
    const front = startTunnelFront(upstream.port);
    try {
      const client = await openClient(`${front.url}/masked`);
      expect(await withTimeout(client.next(), 3000, "good frame")).toBe("fine");
      expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
        code: 1001,
        reason: "upstream protocol error",
      });
      await waitFor("upstream reader", 1000, () => upstreamClose !== undefined);
      expect(await withTimeout(upstreamClose!, 3000, "upstream close")).toEqual({
        code: 1002,
        reason: "protocol error",
      });
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(front.closed[0].error).toMatchObject({ kind: "protocol", side: "upstream" });
      expect(front.closed[0].error?.message).toContain("masked frame");
    } finally {
      front.close();
      upstream.close();
    }
  });

  it("closes a client whose message is over maxMessage with 1009, and the upstream with 1000", async () => {
    const front = startTunnelFront(echo.port, { maxMessage: 64 * 1024 });
    try {
      const client = await openClient(`${front.url}/big`);
      client.socket.send(new Uint8Array(64 * 1024)); // exactly the limit: relayed
      expect((await withTimeout(client.next(), 3000, "echo") as ArrayBuffer).byteLength).toBe(
        64 * 1024,
      );
      client.socket.send(new Uint8Array(64 * 1024 + 1));
      expect(await withTimeout(client.closed, 3000, "client close")).toEqual({
        code: 1009,
        reason: "message too big",
      });
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "client message too big",
      });
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
    } finally {
      front.close();
    }
  });

  it("counts all fragments of a client message against maxMessage", async () => {
    const front = startTunnelFront(echo.port, { maxMessage: 1000 });
    try {
      const client = await openRawClient(front.port, "/fragments");
      const part = new Uint8Array(400);
      await client.send(encodeFrame({ opcode: 2, payload: part, fin: false, mask: true }));
      await client.send(encodeFrame({ opcode: 0, payload: part, fin: false, mask: true }));
      await client.send(encodeFrame({ opcode: 0, payload: part, mask: true }));
      expect(await withTimeout(client.frames.nextClose(), 3000, "client close")).toEqual({
        code: 1009,
        reason: "message too big",
      });
      // Between fragments is a frame boundary: the upstream gets a clean close.
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1000,
        reason: "client message too big",
      });
      client.close();
    } finally {
      front.close();
    }
  });
});

describe("WebSocket tunnel: idle timeout and pings", () => {
  it("closes a silent pair with 1001 both ways while a chatty pair stays open", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port, { idleTimeoutMs: 300 });
    let chatty: TestClient | undefined;
    try {
      chatty = await openClient(`${front.url}/chatty`);
      const silent = await openClient(`${front.url}/silent`);
      const started = performance.now();
      let stop = false;
      const chatter = (async () => {
        for (let i = 0; !stop && i < 100; i++) {
          chatty!.socket.send(`tick ${i}`);
          await chatty!.next();
          await sleep(50);
        }
      })();
      expect(await withTimeout(silent.closed, 3000, "silent close")).toEqual({
        code: 1001,
        reason: "idle timeout",
      });
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(1500);
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1001,
        reason: "idle timeout",
      });
      await sleep(700);
      expect(chatty.socket.readyState).toBe(WebSocket.OPEN);
      stop = true;
      await chatter;
      await closeClient(chatty);
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(tunnelTicker.size).toBe(0); // no timer outlives its tunnel
    } finally {
      if (chatty) await closeClient(chatty);
      await front.registry.closeAll(1001, "test over", 1000);
      front.close();
      await echo.close();
    }
  });

  it("pings a silent client and closes it with 1001 when nothing comes back", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port, { pingIntervalMs: 200 });
    let raw: RawClient | undefined;
    try {
      raw = await openRawClient(front.port, "/mute");
      const started = performance.now();
      const ping = await withTimeout(raw.frames.next(), 2000, "ping");
      expect(ping?.opcode).toBe(0x9);
      expect(ping?.masked).toBe(false);
      expect(await withTimeout(raw.frames.nextClose(), 2000, "close")).toEqual({
        code: 1001,
        reason: "ping timeout",
      });
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect(await withTimeout(echo.nextClose(), 3000, "upstream close")).toEqual({
        code: 1001,
        reason: "ping timeout",
      });
      raw.close();
      await waitFor("registry empty", 3000, () => front.registry.size === 0);
      expect(tunnelTicker.size).toBe(0);
    } finally {
      raw?.close();
      await front.registry.closeAll(1001, "test over", 1000);
      front.close();
      await echo.close();
    }
  });

  it("keeps a client that answers pings (Deno's WebSocket does) open", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port, { pingIntervalMs: 100 });
    let client: TestClient | undefined;
    try {
      client = await openClient(`${front.url}/answers`);
      await sleep(800);
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
      client.socket.send("still here");
      expect(await withTimeout(client.next(), 2000, "echo")).toBe("still here");
    } finally {
      if (client) await closeClient(client);
      await front.registry.closeAll(1001, "test over", 1000);
      front.close();
      await echo.close();
    }
  });
});

describe("WebSocket tunnel: shutdown", () => {
  it("registry.closeAll(1001) closes every tunnel both ways and empties the registry", async () => {
    const echo = startEchoUpstream();
    const front = startTunnelFront(echo.port);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 5; i++) clients.push(await openClient(`${front.url}/s${i}`));
      await waitFor("5 tunnels", 2000, () => front.registry.size === 5);
      await front.registry.closeAll(1001, "server shutting down", 3000);
      expect(front.registry.size).toBe(0);
      for (const client of clients) {
        expect(await withTimeout(client.closed, 2000, "client close")).toEqual({
          code: 1001,
          reason: "server shutting down",
        });
      }
      for (let i = 0; i < 5; i++) {
        expect(await withTimeout(echo.nextClose(), 2000, "upstream close")).toEqual({
          code: 1001,
          reason: "server shutting down",
        });
      }
      expect(front.closed.length).toBe(5);
    } finally {
      for (const client of clients) await closeClient(client);
      front.close();
      await echo.close();
    }
  });

  it("sends the shutdown close right after a frame a slow client was still taking", async () => {
    // One 16 MB frame, then silence: the tunnel is stuck writing it to a client that does not
    // read when the close is asked for; the close must follow the frame, not wait for the grace.
    const big = encodeFrame({ opcode: 2, payload: new Uint8Array(16 * 1024 * 1024).fill(7) });
    const upstream = startRawUpstream(async (conn, frames) => {
      for (let off = 0; off < big.length;) off += await conn.write(big.subarray(off));
      await frames.next().catch(() => null); // bws's close
      conn.close();
    });
    const front = startTunnelFront(upstream.port, { closeGraceMs: 5000 });
    let client: RawClient | undefined;
    try {
      client = await openRawClient(front.port, "/slow");
      await sleep(300);
      const started = performance.now();
      const closing = front.registry.closeAll(1001, "server shutting down", 8000);
      const frame = await withTimeout(client.frames.next(), 5000, "big frame");
      expect(frame?.payload.length).toBe(16 * 1024 * 1024);
      expect(frame?.payload.every((b) => b === 7)).toBe(true);
      expect(await withTimeout(client.frames.nextClose(), 3000, "close")).toEqual({
        code: 1001,
        reason: "server shutting down",
      });
      client.close();
      await closing;
      expect(performance.now() - started).toBeLessThan(4000);
      expect(front.registry.size).toBe(0);
    } finally {
      client?.close();
      front.close();
      upstream.close();
    }
  });

  it("puts the shutdown close after a frame in passage, and gives up after the grace", async () => {
    // The upstream sends half of a frame and stalls: the client's close must wait for the
    // boundary that never comes, and the sockets are closed when the grace runs out.
    const upstream = startRawUpstream(async (conn, frames) => {
      const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(1000) });
      await conn.write(frame.subarray(0, 300));
      await frames.next().catch(() => null);
    });
    const front = startTunnelFront(upstream.port, { closeGraceMs: 300 });
    let client: RawClient | undefined;
    try {
      client = await openRawClient(front.port, "/stall");
      await waitFor("tunnel", 2000, () => front.registry.size === 1);
      await sleep(50);
      const started = performance.now();
      const closing = front.registry.closeAll(1001, "server shutting down", 3000);
      // No close frame may appear inside the half-sent frame: the client only sees EOF.
      expect(await withTimeout(bytesUntilEof(client), 3000, "EOF")).toBe(300);
      await closing;
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect(front.registry.size).toBe(0);
    } finally {
      client?.close();
      front.close();
      upstream.close();
    }
  });
});

/** VmRSS of a process, bytes. */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return match ? Number(match[1]) * 1024 : 0;
}

/** The tunnel front in its own process (its RSS is what is measured). */
async function spawnTunnelFront(upstreamPort: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./helpers/ws_tunnel_front.ts", import.meta.url).pathname,
      String(upstreamPort),
      "tunnel",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start the tunnel front: the child exited");
    first += value;
  }
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(first.split("\n")[0]) as { port: number };
  return {
    pid: child.pid,
    port,
    async stop() {
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

const MiB = 1024 * 1024;
const MESSAGE = 64 * 1024;
const MESSAGES = 160; // 10 MiB per upstream

/** Message `seq`'s payload: its number, then the byte `seq & 0xff` repeated. */
function fillMessage(frame: Uint8Array, seq: number): void {
  new DataView(frame.buffer).setUint32(10, seq);
  frame.fill(seq & 0xff, 14);
}

/** Reads `MESSAGES` frames from `conn` and checks each one's length, number and (strided)
 * content; returns the count of good messages. */
async function readMessages(conn: Deno.Conn, leftover: Uint8Array): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  const head = new Uint8Array(14);
  let headFill = 0;
  let seq = 0;
  let left = 0; // payload bytes of the current message still to come, after its first 4
  let at = 0; // offset into the current payload's pattern part
  const take = (chunk: Uint8Array) => {
    let i = 0;
    while (i < chunk.length) {
      if (left === 0) {
        head[headFill++] = chunk[i++];
        if (headFill < 14) continue;
        const view = new DataView(head.buffer);
        if (head[0] !== 0x82 || head[1] !== 127 || view.getBigUint64(2) !== BigInt(MESSAGE)) {
          throw new Error(`message ${seq}: bad header ${[...head.subarray(0, 10)]}`);
        }
        if (view.getUint32(10) !== seq) {
          throw new Error(`message ${seq} came as ${view.getUint32(10)}`);
        }
        headFill = 0;
        left = MESSAGE - 4;
        at = 0;
        continue;
      }
      const n = Math.min(left, chunk.length - i);
      const want = seq & 0xff;
      // Every 97th byte (a stride that visits every offset class) and the last one.
      for (let k = (97 - (at % 97)) % 97; k < n; k += 97) {
        if (chunk[i + k] !== want) throw new Error(`message ${seq}: byte ${at + k} differs`);
      }
      if (chunk[i + n - 1] !== want) throw new Error(`message ${seq}: byte ${at + n - 1} differs`);
      i += n;
      at += n;
      left -= n;
      if (left === 0) seq++;
    }
  };
  take(leftover);
  while (seq < MESSAGES) {
    const n = await conn.read(buf);
    if (n === null) break;
    take(buf.subarray(0, n));
  }
  return seq;
}

describe("WebSocket tunnel: backpressure", () => {
  it("100 clients that stop reading while their upstreams send 10 MB each: RSS < +32 MB, then all messages arrive in order", async () => {
    const written: number[] = [];
    const upstream = startRawUpstream(async (conn) => {
      const index = written.length;
      written.push(0);
      const frame = encodeFrame({ opcode: 2, payload: new Uint8Array(MESSAGE) });
      for (let seq = 0; seq < MESSAGES; seq++) {
        fillMessage(frame, seq);
        for (let off = 0; off < frame.length;) off += await conn.write(frame.subarray(off));
        written[index] += MESSAGE;
      }
    });
    const front = await spawnTunnelFront(upstream.port);
    const clients: RawClient[] = [];
    try {
      await sleep(300);
      const rssBefore = rssOf(front.pid);
      for (let i = 0; i < 100; i++) clients.push(await openRawClient(front.port, `/c${i}`));
      // Wait until the upstreams stop making progress (or finish), at most 30 s.
      let peak = rssOf(front.pid);
      let last = -1;
      let still = 0;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && still < 4) {
        await sleep(250);
        peak = Math.max(peak, rssOf(front.pid));
        const total = written.reduce((a, b) => a + b, 0);
        still = total === last ? still + 1 : 0;
        last = total;
      }
      const total = written.reduce((a, b) => a + b, 0);
      const grown = peak - rssBefore;
      if (Deno.env.get("WS_TEST_VERBOSE")) {
        console.log(
          `backpressure: upstreams wrote ${(total / MiB).toFixed(0)} of ${100 * 10} MiB ` +
            `before stalling; tunnel front RSS ${(rssBefore / MiB).toFixed(1)} -> ` +
            `${(peak / MiB).toFixed(1)} MiB (+${(grown / MiB).toFixed(1)})`,
        );
      }
      expect(written.length).toBe(100);
      expect(grown).toBeLessThan(32 * MiB);
      // The clients read again: every message arrives complete and in order.
      const counts = await withTimeout(
        Promise.all(clients.map((c) => readMessages(c.conn, c.rest))),
        60_000,
        "all messages",
      );
      expect(counts.every((n) => n === MESSAGES)).toBe(true);
    } finally {
      for (const client of clients) client.close();
      upstream.close();
      await front.stop();
    }
  });
});

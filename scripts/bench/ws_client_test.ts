import { describe, it } from "node:test";
import { expect } from "expect";
import { startEchoUpstream, startRawUpstream } from "../../tests/helpers/ws_peers.ts";
import { startRawRelayFront } from "../../tests/helpers/ws_tunnel_front.ts";
import { runWindowedEcho, spawnPortProgram } from "./ws_client.ts";

describe("runWindowedEcho", () => {
  it("gets every message of a windowed run echoed through a relay", async () => {
    const echo = startEchoUpstream();
    const relay = startRawRelayFront(echo.port);
    try {
      const run = await runWindowedEcho({ port: relay.port, count: 1000, window: 10, size: 64 });
      expect(run.messages).toBe(1000);
      expect(run.seconds).toBeGreaterThan(0);
    } finally {
      relay.close();
      await echo.close();
    }
  });

  it("gives up with the count echoed when the upstream stops answering", async () => {
    const silent = startRawUpstream(() => {});
    try {
      await expect(
        runWindowedEcho({ port: silent.port, count: 10, window: 5, size: 8, timeoutMs: 300 }),
      ).rejects.toThrow("Cannot finish the echo run: 300 ms passed after 0 echoes");
    } finally {
      silent.close();
    }
  });
});

describe("spawnPortProgram", () => {
  it("runs the echo program on the port it printed until its stdin closes", async () => {
    const echo = await spawnPortProgram("ws-echo", [
      new URL("./ws_echo.ts", import.meta.url).pathname,
    ]);
    try {
      const run = await runWindowedEcho({ port: echo.port, count: 50, window: 5, size: 16 });
      expect(run.messages).toBe(50);
    } finally {
      await echo.stop();
    }
    await expect(Deno.connect({ hostname: "127.0.0.1", port: echo.port })).rejects.toThrow();
  });
});

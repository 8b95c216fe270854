import { describe, it } from "node:test";
import { expect } from "expect";
import { freePort } from "./process.ts";

const decoder = new TextDecoder();

/** A backend that names the path and the X-Forwarded-For it got. */
function startBackend(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    return new Response(`${path} xff=${req.headers.get("x-forwarded-for")}\n`);
  });
}

async function connectWithin(port: number, ms: number): Promise<Deno.TcpConn> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await Deno.connect({ hostname: "127.0.0.1", port });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("raw_floor.ts", () => {
  it("answers pipelined requests in order with the added header, then honours close", async () => {
    const backend = startBackend();
    const port = freePort();
    const floor = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-config",
        new URL("./raw_floor.ts", import.meta.url).pathname,
        String(port),
        String(backend.addr.port),
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let conn: Deno.TcpConn | undefined;
    try {
      conn = await connectWithin(port, 20_000);
      await conn.write(
        new TextEncoder().encode(
          "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
            "GET /b HTTP/1.1\r\nHost: x\r\nconnection: Close\r\n\r\n",
        ),
      );
      let text = "";
      const buf = new Uint8Array(4096);
      const deadline = Date.now() + 10_000;
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += decoder.decode(buf.subarray(0, n));
        if (Date.now() > deadline) throw new Error("the floor did not close the connection");
      }
      const bodies = text.split("\r\n\r\n").slice(1).map((part) => part.split("HTTP/1.1")[0]);
      expect(bodies).toEqual(["/a xff=127.0.0.1\n", "/b xff=127.0.0.1\n"]);
      expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    } finally {
      conn?.close();
      floor.kill("SIGKILL");
      await floor.status;
      await backend.shutdown();
    }
  });
});

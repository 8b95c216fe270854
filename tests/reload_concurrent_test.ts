/**
 * Reloads that arrive together (SIGHUP, --watch and the API at once) are applied one after
 * another: each sees the state the previous one left, and the last one wins (SPEC 7).
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, type Seen, startEchoBackend } from "./helpers/backends.ts";
import { memoryLogger } from "./helpers/memory_logger.ts";
import { parseConfigText } from "../src/config/load.ts";
import { startServer } from "../src/server/server.ts";
import { freePort } from "./helpers/pebble.ts";

function config(port: number, upstream: string): string {
  return `
[[sites]]
name = "main"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "${upstream}"

[[sites.proxy.routes]]
path = "/"
upstream = "b"
`;
}

const parse = (toml: string) => parseConfigText(toml, { baseDir: Deno.cwd() });

async function answers(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    return ((await res.json()) as Seen).id;
  } catch {
    return "refused";
  }
}

describe("concurrent reloads", () => {
  let a: Backend, b: Backend;
  before(() => {
    a = startEchoBackend("a");
    b = startEchoBackend("b");
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it("applies them one at a time: the last one wins, no listener is left behind", async () => {
    const ports = [freePort(), freePort(), freePort()];
    const handle = await startServer(parse(config(ports[0], a.url)), { logger: memoryLogger() });
    try {
      // Each reload moves the site to another port and upstream; all are fired at once.
      const steps = [
        config(ports[1], b.url),
        config(ports[2], a.url),
        config(ports[0], b.url),
        config(ports[1], a.url),
        config(ports[2], b.url),
      ];
      const results = await Promise.all(steps.map((s) => handle.reload(parse(s))));
      expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true]);
      expect(handle.generation).toBe(6);
      expect(handle.addresses.map((l) => l.port)).toEqual([ports[2]]);
      expect(await answers(ports[2])).toBe("b");
      expect(await answers(ports[0])).toBe("refused");
      expect(await answers(ports[1])).toBe("refused");
    } finally {
      await handle.shutdown();
    }
  });
});

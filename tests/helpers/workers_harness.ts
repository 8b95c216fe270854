/**
 * A bws with worker threads in a process of its own, driven by a test over stdin/stdout (one
 * JSON line each way per command). Worker threads are V8 isolates that load the whole server:
 * in the test process (where `deno test --parallel` runs every test file) they would swell the
 * RSS other files measure. `WorkersBws` (workers_process.ts) is the test's side.
 *
 *   deno run -A tests/helpers/workers_harness.ts CONFIG.toml
 *
 * Prints `{"port":…,"admin":"http://…"}` once started, then answers each command line:
 * `{"cmd":"workers"}`, `{"cmd":"upstreams"}`, `{"cmd":"generation"}`, `{"cmd":"logs"}`,
 * `{"cmd":"fail","id":1}`, `{"cmd":"reload","path":"…"}`, `{"cmd":"stop"}`.
 *
 * @module
 */

import { dirname } from "node:path";
import { parseConfigText } from "../../src/config/load.ts";
import { startServer } from "../../src/server/server.ts";
import type { ServerHandle } from "../../src/server/types.ts";
import type { WorkerControl } from "../../src/workers/supervisor.ts";
import { memoryLogger } from "./memory_logger.ts";

const path = Deno.args[0];
const load = (file: string) =>
  parseConfigText(Deno.readTextFileSync(file), { baseDir: dirname(file) });
const logger = memoryLogger();
const handle = await startServer(load(path), { logger }) as ServerHandle & WorkerControl;
const encoder = new TextEncoder();
const say = (value: unknown) => {
  const bytes = encoder.encode(JSON.stringify(value) + "\n");
  for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
};
const admin = handle.managementAddress;
say({
  port: handle.addresses[0].port,
  admin: admin ? `http://${admin.hostname}:${admin.port}` : null,
});

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
for await (const chunk of lines) {
  pending += chunk;
  let nl: number;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    const cmd = JSON.parse(line) as { cmd: string; id?: number; path?: string };
    switch (cmd.cmd) {
      case "workers":
        say(await handle.workers());
        break;
      case "upstreams":
        say(handle.upstreams());
        break;
      case "generation":
        say(handle.generation);
        break;
      case "logs":
        say(logger.lines);
        break;
      case "fail":
        handle.failWorker(cmd.id!);
        say(true);
        break;
      case "reload":
        say(await handle.reload(load(cmd.path!)));
        break;
      case "stop":
        await handle.shutdown();
        say(true);
        Deno.exit(0);
    }
  }
}
await handle.shutdown();

/**
 * `deno task start`: with no arguments, two demo backends plus bws with `examples/demo.toml`, in
 * one process. With arguments (`deno task start -c bws.toml`), the `bws` command line, exactly
 * as `cli.ts`.
 *
 * @module
 */

import { startFromFile } from "../mod.ts";
import { runCli } from "../src/cli/main.ts";
import { startDemoBackend } from "./demo_backend.ts";

if (Deno.args.length > 0) Deno.exit(await runCli(Deno.args));

const configPath = new URL("../examples/demo.toml", import.meta.url).pathname;
const backends = [startDemoBackend("backend-1", 3001), startDemoBackend("backend-2", 3002)];
const server = await startFromFile(configPath);

const site = server.addresses[0];
const base = `http://localhost:${site.port}`;
console.log(`
bws demo is running (config: examples/demo.toml)
  static page:      curl ${base}/
  proxied API:      curl ${base}/api/hello     (alternates between backend-1 and backend-2)
  WebSocket echo:   ${base.replace("http", "ws")}/ws
  management API:   curl http://127.0.0.1:${server.managementAddress?.port}/api/status
                    curl http://127.0.0.1:${server.managementAddress?.port}/metrics
Press Ctrl-C to stop.
`);

const stop = async () => {
  await server.shutdown();
  await Promise.all(backends.map((b) => b.shutdown()));
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGHUP", async () => {
  const r = await server.reloadFromSource();
  console.log(r.ok ? `reloaded: generation ${r.generation}` : "reload failed; see the log");
});

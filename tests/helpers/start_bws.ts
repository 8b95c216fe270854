/**
 * Test entry: bws in a process of its own, started through the module API with start options
 * the command line does not offer (shorter ACME and fleet timings), for tests that must kill it.
 *
 *   deno run -A tests/helpers/start_bws.ts <config file> '<StartOptions as JSON>'
 *
 * SIGTERM or SIGINT shuts it down gracefully.
 *
 * @module
 */

import { startFromFile, type StartOptions } from "../../mod.ts";

const [file, json = "{}"] = Deno.args;
const options = JSON.parse(json) as Omit<StartOptions, "logger">;
const server = await startFromFile(file, options);
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => void server.shutdown());
}
await server.finished;

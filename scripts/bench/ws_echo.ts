/**
 * The WebSocket benchmarks' echo upstream (`startEchoUpstream`: `Deno.upgradeWebSocket`,
 * every message sent back): `deno run -A scripts/bench/ws_echo.ts` prints `{"port":N}` and
 * serves until its stdin closes.
 *
 * @module
 */

import { startEchoUpstream } from "../../tests/helpers/ws_peers.ts";

const echo = startEchoUpstream();
console.log(JSON.stringify({ port: echo.port }));
for await (const _ of Deno.stdin.readable) { /* runs until stdin closes */ }
await echo.close();
Deno.exit(0);

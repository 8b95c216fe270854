/**
 * bws as a module: load and validate a config, start a server from a file or an object, and
 * control it (reload, shutdown, addresses) from your own Deno scripts.
 *
 * @example Start from an object
 * ```ts
 * import { configFromObject, startServer } from "./mod.ts";
 *
 * const config = configFromObject({
 *   sites: [{
 *     name: "api",
 *     hostname: "localhost",
 *     port: 8080,
 *     proxy: {
 *       enabled: true,
 *       upstreams: [{ name: "app", url: "http://127.0.0.1:3000" }],
 *       routes: [{ path: "/", upstream: "app" }],
 *     },
 *   }],
 * });
 * const server = await startServer(config);
 * console.log(server.addresses);
 * await server.shutdown();
 * ```
 *
 * @module
 */

export { configFromObject, loadConfigFile, parseConfigText } from "./src/config/load.ts";
export { summarizeConfig } from "./src/config/summary.ts";
export { ConfigError, formatIssues } from "./src/config/types.ts";
export type { Config, ConfigIssue, SiteConfig } from "./src/config/types.ts";
export { startServer } from "./src/server/server.ts";
export type { StartOptions } from "./src/server/server.ts";
export type { ClusterTuning } from "./src/cluster/cluster.ts";
export type {
  ListeningAddress,
  ReloadResult,
  ServerHandle,
  UpstreamGroupState,
  UpstreamMemberState,
} from "./src/server/types.ts";

import { loadConfigFile } from "./src/config/load.ts";
import { type StartOptions, startServer } from "./src/server/server.ts";
import type { ServerHandle } from "./src/server/types.ts";

/** Loads, validates and starts the config file at `path`. */
export async function startFromFile(path: string, opts?: StartOptions): Promise<ServerHandle> {
  return await startServer(await loadConfigFile(path), opts);
}

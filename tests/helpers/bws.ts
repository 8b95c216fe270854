/**
 * Starts bws in-process from inline TOML on ephemeral loopback ports, for end-to-end tests.
 *
 * @module
 */

import { parseConfigText } from "../../src/config/load.ts";
import { type StartOptions, startServer } from "../../src/server/server.ts";
import type { ServerHandle } from "../../src/server/types.ts";
import { memoryLogger } from "./memory_logger.ts";

export interface TestBws {
  readonly handle: ServerHandle;
  readonly port: number;
  readonly base: string;
  readonly logger: ReturnType<typeof memoryLogger>;
  url(path: string): string;
  close(): Promise<void>;
}

/**
 * Starts bws from TOML text; relative paths resolve against `baseDir` (default cwd). `options`
 * are the module API's start options (the logger is always a {@link memoryLogger}).
 */
export async function startBws(
  toml: string,
  baseDir = Deno.cwd(),
  options: Omit<StartOptions, "logger"> = {},
): Promise<TestBws> {
  const config = parseConfigText(toml, { baseDir });
  const logger = memoryLogger();
  const handle = await startServer(config, { ...options, logger });
  const port = handle.addresses[0].port;
  const base = `http://127.0.0.1:${port}`;
  return {
    handle,
    port,
    base,
    logger,
    url: (path) => base + path,
    close: () => handle.shutdown(),
  };
}

/**
 * A minimal proxy site config in TOML in front of `upstreams` (group "b"): `server` goes into the
 * `[server]` table, `extra` after the routes; `port` 0 (an ephemeral one) suits in-process bws,
 * a bws subprocess needs a free port chosen by the test.
 */
export function proxySite(
  upstreams: (string | { url: string; weight?: number })[],
  extra = "",
  routes = `
[[sites.proxy.routes]]
path = "/"
upstream = "b"
`,
  server = "",
  port = 0,
): string {
  return `
[server]
grace_period = 1
${server}

[[sites]]
name = "s"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"

[sites.proxy]
enabled = true
${
    upstreams.map((u) => `
[[sites.proxy.upstreams]]
name = "b"
url = "${typeof u === "string" ? u : u.url}"
weight = ${typeof u === "string" ? 1 : u.weight ?? 1}
`).join("")
  }
${routes}
${extra}
`;
}

/** A fetch client that may set the Host header (fetch replaces it otherwise). */
export const hostClient: Deno.HttpClient = Deno.createHttpClient({ allowHost: true });

/** fetch with a custom Host header. */
export function fetchHost(url: string, host: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("host", host);
  return fetch(url, { ...init, headers, client: hostClient } as RequestInit);
}

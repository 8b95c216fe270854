/**
 * The management API: a small Hono app (`createAdminApp`) and its listener (`serveAdmin`).
 *
 * | route | answer |
 * | --- | --- |
 * | `GET /` | the dashboard page (HTML) |
 * | `GET /health` | `{"status":"ok"}` |
 * | `GET /api/status` | `runtime.status()` plus `certificates` and `lastReload`, as JSON |
 * | `GET /api/stats?window=S&step=S` | traffic over the last S seconds ({@link StatsDocument}) |
 * | `GET /metrics` | Prometheus text 0.0.4 |
 * | `POST /api/config/reload` | 200 `{"ok":true,"generation":n}` / 400 `{"ok":false,"errors":[…]}` |
 *
 * With a non-empty `api_key` every request but `GET /` (including `/health`) needs `X-API-Key`;
 * a missing or wrong key gets 401 before routing, so unauthenticated callers learn nothing about
 * routes. The dashboard page holds no data: it asks the user for the key and sends it.
 * Unknown paths get 404, known paths with another method 405 with `Allow`. GET routes answer
 * HEAD too.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import type { ManagementConfig } from "../config/types.ts";
import type { ReloadResult } from "../server/types.ts";
import { type AdminRuntime, issuesJson } from "./types.ts";
import { isLoopbackAuthority, isLoopbackHost, isLoopbackOrigin } from "./loopback.ts";
import { constantTimeEqual } from "./constant_time_equal.ts";
import { ClientConnection } from "../http1/connection.ts";
import type { OptionsSource } from "../http1/front_options.ts";
import { requestToFetch, responseFromFetch } from "../http1/fetch_adapter.ts";
import type { HttpRequest, HttpResponse } from "../http1/types.ts";
import { runAcceptLoop } from "../server/accept_loop.ts";
import { ConnectionGate } from "../server/connection_gate.ts";

/** Client connections the management port takes at once. */
const ADMIN_MAX_CONNECTIONS = 256;
/** How long a shutdown lets management requests finish. */
const ADMIN_DRAIN_MS = 2000;
const ADMIN_TIMEOUTS = { headerMs: 10_000, keepAliveMs: 75_000, bodyMs: 30_000, sendMs: 60_000 };
const FORBIDDEN_BODY = new TextEncoder().encode(
  JSON.stringify({ error: "forbidden: management API is loopback-only", status: 403 }),
);
import { dashboardPage } from "./dashboard.ts";
import {
  MAX_STEP_SECONDS,
  MAX_WINDOW_SECONDS,
  RequestSeries,
  type StatsDocument,
} from "./request_series.ts";
import { errorText } from "../log/error_text.ts";

/** Content type of `GET /metrics`. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Allowed methods per known path, for 405 answers. */
const ALLOW: Readonly<Record<string, string>> = {
  "/": "GET, HEAD",
  "/health": "GET, HEAD",
  "/api/status": "GET, HEAD",
  "/api/stats": "GET, HEAD",
  "/metrics": "GET, HEAD",
  "/api/config/reload": "POST",
};

/** Reads an integer query parameter in `[1, max]`; absent → `fallback`; else an error message. */
function intParam(
  raw: string | undefined,
  name: string,
  max: number,
  fallback: number,
): number | string {
  if (raw === undefined) return fallback;
  const n = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (n >= 1 && n <= max) return n;
  return `Cannot report a ${name} of "${raw}" seconds: expected an integer from 1 to ${max}`;
}

/** `runtime.status()` with the certificates and the last reload added. */
async function statusDocument(runtime: AdminRuntime): Promise<unknown> {
  const status = await runtime.status();
  if (status === null || typeof status !== "object" || Array.isArray(status)) return status;
  return {
    ...status,
    certificates: runtime.certificates?.() ?? [],
    lastReload: runtime.lastReload?.() ?? null,
  };
}

function errorJson(c: Context, status: 400 | 401 | 403 | 404 | 405 | 500, message: string) {
  return c.json({ error: message, status }, status);
}

/**
 * Builds the management app. It does no I/O of its own: test it with `app.request(...)`, serve
 * it with {@link serveAdmin}.
 */
export function createAdminApp(cfg: ManagementConfig, runtime: AdminRuntime): Hono {
  const app = new Hono();
  const key = cfg.apiKey;
  let reloading: Promise<unknown> = Promise.resolve();
  let emptySeries: RequestSeries | null = null;
  const stats = (window: number, step: number): StatsDocument =>
    runtime.stats
      ? runtime.stats(window, step)
      : (emptySeries ??= new RequestSeries()).stats(window, step);

  app.use("*", async (c, next) => {
    c.header("Cache-Control", "no-store");
    const isPage = c.req.path === "/" && (c.req.method === "GET" || c.req.method === "HEAD");
    if (key !== "" && !isPage && !constantTimeEqual(c.req.header("x-api-key") ?? "", key)) {
      c.header("WWW-Authenticate", 'ApiKey header="X-API-Key"');
      return errorJson(c, 401, "missing or wrong X-API-Key");
    }
    await next();
  });

  app.get("/", (c) => {
    const page = dashboardPage(key !== "");
    for (const [name, value] of Object.entries(page.headers)) c.header(name, value);
    return c.html(page.html);
  });
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get(
    "/api/status",
    async (c) => c.json(await statusDocument(runtime) as Record<string, unknown>),
  );
  app.get("/api/stats", (c) => {
    const window = intParam(c.req.query("window"), "window", MAX_WINDOW_SECONDS, 900);
    const step = intParam(c.req.query("step"), "step", MAX_STEP_SECONDS, 1);
    if (typeof window === "string") return errorJson(c, 400, window);
    if (typeof step === "string") return errorJson(c, 400, step);
    return c.json(stats(window, step));
  });
  app.get("/metrics", async (c) => {
    c.header("Content-Type", METRICS_CONTENT_TYPE);
    return c.body(await runtime.metricsText());
  });
  app.post("/api/config/reload", async (c) => {
    // One reload at a time: a second request waits for the first and then reloads again.
    const run = reloading.then(() => runtime.reload());
    reloading = run.catch(() => {});
    let result: ReloadResult;
    try {
      result = await run;
    } catch (err) {
      return c.json({
        ok: false,
        errors: [{
          path: "",
          message: `Cannot reload: ${errorText(err)}`,
          line: null,
          column: null,
        }],
      }, 500);
    }
    if (result.ok) return c.json({ ok: true, generation: result.generation });
    return c.json({ ok: false, errors: issuesJson(result.errors) }, 400);
  });

  app.notFound((c) => {
    const allow = ALLOW[c.req.path];
    if (allow === undefined) return errorJson(c, 404, "not found");
    c.header("Allow", allow);
    return errorJson(c, 405, "method not allowed");
  });
  app.onError((err, c) => errorJson(c, 500, `internal error: ${err.message}`));
  return app;
}

/** Options of {@link serveAdmin}. */
export interface ServeAdminOptions {
  /** Listen on this port instead of `cfg.port` (0 = ephemeral, for tests). @default cfg.port */
  readonly port?: number;
}

/** A running management listener. */
export interface AdminServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: { hostname: string; port: number };
  /** Stops accepting and waits for in-flight requests. */
  shutdown(): Promise<void>;
}

/** A request from this machine that no page of another site made (see {@link serveAdmin}). */
function loopbackRequest(req: HttpRequest): boolean {
  if (!isLoopbackHost(req.peer.hostname)) return false;
  if (req.host !== null && !isLoopbackAuthority(req.host)) return false;
  const origin = req.headers.get("origin");
  return origin === null || isLoopbackOrigin(origin);
}

/**
 * Serves the management app on `cfg.host` with bws's own HTTP/1.1 front end (no `Deno.serve`
 * may accept anywhere a client can reach: its accept loop ends the process when descriptors run
 * out). When `cfg.host` is a loopback address (the default `127.0.0.1`, `::1`, `localhost`),
 * peers that are not loopback get 403, and so do requests a web page made: a Host that is not a
 * loopback name (a page whose own name was made to resolve to 127.0.0.1) or an Origin that is not
 * a loopback page (a cross-site form or fetch). A host explicitly set to a non-loopback address
 * accepts any peer (still subject to the key).
 *
 * @throws Error `Cannot listen on "<host>:<port>" for the management API: <detail>`
 */
export function serveAdmin(
  cfg: ManagementConfig,
  runtime: AdminRuntime,
  opts: ServeAdminOptions = {},
): AdminServer {
  const app = createAdminApp(cfg, runtime);
  const loopbackOnly = isLoopbackHost(cfg.host);
  const port = opts.port ?? cfg.port;
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: cfg.host, port });
  } catch (err) {
    throw new Error(
      `Cannot listen on "${cfg.host}:${port}" for the management API: ${errorText(err)}`,
    );
  }
  const forbidden: HttpResponse = {
    status: 403,
    headers: [["content-type", "application/json"], ["cache-control", "no-store"]],
    body: FORBIDDEN_BODY,
  };
  const source: OptionsSource = {
    options: {
      handler: async (req) => {
        if (loopbackOnly && !loopbackRequest(req)) return forbidden;
        return responseFromFetch(await app.fetch(requestToFetch(req), { remoteAddr: req.peer }));
      },
      timeouts: ADMIN_TIMEOUTS,
      limits: { maxHeaderSize: 32 * 1024, maxHeaders: 100 },
    },
  };
  const conns = new Set<ClientConnection>();
  const gate = new ConnectionGate(ADMIN_MAX_CONNECTIONS, 0);
  const loop = runAcceptLoop(listener, gate, {
    onConnection(conn, release) {
      const r = conn.remoteAddr as Deno.NetAddr;
      const c = new ClientConnection(conn, { hostname: r.hostname, port: r.port }, false, source);
      conns.add(c);
      c.onClose = () => {
        conns.delete(c);
        release();
      };
      void c.run();
    },
    onDescriptorShortage() {},
    onAcceptError() {},
  });
  const a = listener.addr as Deno.NetAddr;
  return {
    addr: { hostname: a.hostname, port: a.port },
    async shutdown() {
      try {
        listener.close();
      } catch {
        // already closed
      }
      await loop.done;
      for (const c of conns) c.shutdown();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...conns].map((c) => c.done)),
        new Promise((r) => (timer = setTimeout(r, ADMIN_DRAIN_MS))),
      ]);
      clearTimeout(timer);
      for (const c of conns) c.close();
    },
  };
}

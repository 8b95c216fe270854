/**
 * Starts and runs bws from a validated Config: listeners, plan swaps on reload, graceful
 * shutdown, the management API and certificate management.
 *
 * @module
 */

import type { Config, LogLevel } from "../config/types.ts";
import { ConfigError } from "../config/types.ts";
import { loadConfigFile } from "../config/load.ts";
import { HostRegistry } from "../health/registry.ts";
import { createLogger } from "../log/create_logger.ts";
import type { Logger } from "../log/types.ts";
import { Metrics } from "../admin/metrics.ts";
import { serveAdmin } from "../admin/app.ts";
import { UpstreamClient } from "../upstream/client.ts";
import { WebSocketRegistry } from "../websocket/relay.ts";
import { compilePlan } from "./compile_plan.ts";
import { handleRequest, type Services } from "./handle_request.ts";
import { buildStatus } from "./status.ts";
import { CertificateSet } from "./certificates.ts";
import type { ListenerPlan, Plan } from "./plan_types.ts";
import type { ListeningAddress, ReloadResult, ServerHandle } from "./types.ts";
import { serveTls, type TlsListener } from "../tls/listener.ts";

export interface StartOptions {
  /** Overrides `[logging] level` (e.g. `-v`). */
  logLevel?: LogLevel;
  /** Use this logger instead of one built from `[logging]`. */
  logger?: Logger;
}

interface RunningListener {
  lp: ListenerPlan;
  plan: Plan;
  readonly tls: boolean;
  readonly addr: { hostname: string; port: number };
  readonly tlsListener: TlsListener | null;
  shutdown(): Promise<void>;
  readonly finished: Promise<void>;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function listenError(bind: string, port: number, err: unknown): Error {
  const why = err instanceof Deno.errors.AddrInUse
    ? "address in use"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : errorMessage(err);
  return new Error(`Cannot listen on ${bind}:${port}: ${why}`, { cause: err });
}

/** Starts bws. Rejects (after closing whatever it opened) when a listener cannot start. */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<ServerHandle> {
  const startedAt = Date.now();
  const ownLogger = opts.logger === undefined;
  const makeLogger = (cfg: Config) =>
    opts.logger ?? createLogger(
      opts.logLevel ? { ...cfg.logging, level: opts.logLevel } : cfg.logging,
    );
  let logger = makeLogger(config);
  const registry = new HostRegistry();
  const metrics = new Metrics();
  const client = new UpstreamClient();
  const webSockets = new WebSocketRegistry();
  const certificates = new CertificateSet(() => logger);
  const services: Services = {
    client,
    metrics,
    webSockets,
    acmeChallenge: (token) => certificates.challengeResponse(token),
  };
  const running = new Map<string, RunningListener>();
  let generation = 1;
  let plan = compilePlan(config, generation, { registry, logger });
  let admin: { addr: { hostname: string; port: number }; shutdown(): Promise<void> } | null = null;
  let stopping: Promise<void> | null = null;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));

  async function startListener(lp: ListenerPlan, p: Plan): Promise<RunningListener> {
    const state = { lp, plan: p } as RunningListener;
    const handler = (
      req: Request,
      info: Deno.ServeHandlerInfo | { remoteAddr: { hostname: string; port: number } },
    ) =>
      handleRequest(
        req,
        info as Deno.ServeHandlerInfo<Deno.NetAddr>,
        state.plan,
        state.lp,
        services,
      );
    try {
      if (lp.tls) {
        const certs = await certificates.forListener(lp, p);
        const tl = await serveTls({
          hostname: lp.bind,
          port: lp.port,
          certificates: certs.map,
          defaultName: certs.defaultName,
          handler,
        });
        certificates.attach(lp.key, tl);
        return Object.assign(state, {
          tls: true,
          addr: tl.addr,
          tlsListener: tl,
          shutdown: () => tl.shutdown(),
          finished: tl.finished,
        });
      }
      const server = Deno.serve({
        hostname: lp.bind,
        port: lp.port,
        onListen() {},
        onError(err) {
          logger.error("request failed", { error: errorMessage(err) });
          return new Response("500 Internal Server Error\n", { status: 500 });
        },
      }, handler);
      const addr = server.addr as Deno.NetAddr;
      return Object.assign(state, {
        tls: false,
        addr: { hostname: addr.hostname, port: addr.port },
        tlsListener: null,
        shutdown: () => server.shutdown(),
        finished: server.finished,
      });
    } catch (err) {
      throw listenError(lp.bind, lp.port, err);
    }
  }

  async function applyPlan(next: Plan, prev: Plan | null): Promise<void> {
    await certificates.prepare(next);
    const started: RunningListener[] = [];
    try {
      for (const [key, lp] of next.listeners) {
        const cur = running.get(key);
        if (cur && cur.tls === lp.tls) continue;
        started.push(await startListener(lp, next));
      }
    } catch (err) {
      await Promise.all(started.map((l) => l.shutdown().catch(() => {})));
      throw err;
    }
    // Commit: from here on nothing fails.
    for (const l of started) {
      const old = running.get(l.lp.key);
      if (old) void old.shutdown().catch(() => {});
      running.set(l.lp.key, l);
    }
    for (const [key, l] of running) {
      const lp = next.listeners.get(key);
      if (!lp) {
        running.delete(key);
        certificates.detach(key);
        void l.shutdown().catch(() => {});
        continue;
      }
      l.lp = lp;
      l.plan = next;
      if (l.tlsListener && prev) await certificates.update(lp, next, l.tlsListener);
    }
    plan = next;
    metrics.setGeneration(next.generation);
    for (const g of next.groups) g.start();
    if (prev) {
      await Promise.all(prev.groups.map((g) => g.stop()));
      registry.retain(new Set(next.groups.flatMap((g) => g.keys)));
    }
    certificates.manage(next);
  }

  async function startAdmin(cfg: Config): Promise<void> {
    if (admin) {
      await admin.shutdown();
      admin = null;
    }
    if (!cfg.management.enabled) return;
    try {
      admin = serveAdmin(cfg.management, {
        status: () =>
          buildStatus(
            plan,
            [...running.values()].map((l) => ({ ...l.addr, tls: l.tls, key: l.lp.key })),
            startedAt,
          ),
        metricsText: () =>
          metrics.render(
            plan.groups.flatMap((g) => {
              const snap = g.snapshot();
              return snap.members.map((m) => ({
                site: g.site,
                group: snap.name,
                url: m.url,
                live: m.live,
                inFlight: m.inFlight,
                webSockets: m.webSockets,
                requests: m.requests,
                fails: m.fails,
              }));
            }),
          ),
        reload: () => handle.reloadFromSource(),
      });
    } catch (err) {
      throw listenError(cfg.management.host, cfg.management.port, err);
    }
  }

  try {
    await applyPlan(plan, null);
    await startAdmin(config);
  } catch (err) {
    await Promise.all([...running.values()].map((l) => l.shutdown().catch(() => {})));
    for (const g of plan.groups) await g.stop();
    await certificates.stop();
    client.close();
    if (ownLogger) await logger.close();
    throw err;
  }

  const onUsr1 = () => void logger.reopen();
  try {
    Deno.addSignalListener("SIGUSR1", onUsr1);
  } catch { /* not supported on this platform (Windows) */ }

  logger.info("bws started", {
    name: config.server.name,
    listeners: [...running.values()].map((l) =>
      `${l.tls ? "https" : "http"}://${l.addr.hostname}:${l.addr.port}`
    ).join(" "),
  });

  const handle: ServerHandle = {
    get addresses(): ListeningAddress[] {
      return [...running.values()].map((l) => ({
        hostname: l.addr.hostname,
        port: l.addr.port,
        tls: l.tls,
        sites: l.lp.sites.map((s) => s.name),
      }));
    },
    get managementAddress() {
      return admin ? admin.addr : null;
    },
    get generation() {
      return plan.generation;
    },
    get config() {
      return plan.config;
    },
    upstreams() {
      return plan.groups.map((g) => ({ site: g.site, ...g.snapshot() }));
    },
    async reload(next: Config): Promise<ReloadResult> {
      if (stopping) {
        return { ok: false, errors: [{ path: "", message: "server is shutting down" }] };
      }
      let nextLogger = logger;
      const managementChanged = JSON.stringify(next.management) !==
        JSON.stringify(plan.config.management);
      const loggingChanged = JSON.stringify(next.logging) !== JSON.stringify(plan.config.logging);
      try {
        if (loggingChanged && ownLogger) nextLogger = makeLogger(next);
        const nextPlan = compilePlan(next, generation + 1, { registry, logger: nextLogger });
        await applyPlan(nextPlan, plan);
        generation++;
        if (nextLogger !== logger) {
          const old = logger;
          logger = nextLogger;
          setTimeout(() => void old.close(), 1000);
        }
        if (managementChanged) {
          // Restart after answering the reload request that may be coming through it.
          setTimeout(
            () =>
              void startAdmin(next).catch((err) =>
                logger.error("management API failed to restart", { error: errorMessage(err) })
              ),
            50,
          );
        }
        metrics.reloadSucceeded();
        logger.info("config reloaded", { generation });
        return { ok: true, generation };
      } catch (err) {
        if (nextLogger !== logger) void nextLogger.close();
        metrics.reloadFailed();
        const errors = err instanceof ConfigError
          ? err.issues
          : [{ path: "", message: errorMessage(err) }];
        logger.error("reload failed; keeping the running config", {
          errors: errors.map((e) => `${e.path ? e.path + ": " : ""}${e.message}`).join("; "),
        });
        return { ok: false, errors };
      }
    },
    async reloadFromSource(): Promise<ReloadResult> {
      const source = plan.config.source;
      if (!source) {
        return { ok: false, errors: [{ path: "", message: "server was not started from a file" }] };
      }
      let next: Config;
      try {
        next = await loadConfigFile(source);
      } catch (err) {
        metrics.reloadFailed();
        const errors = err instanceof ConfigError
          ? err.issues
          : [{ path: "", message: errorMessage(err) }];
        logger.error("reload failed; keeping the running config", {
          file: source,
          errors: errors.map((e) =>
            `${e.line ? `line ${e.line}: ` : ""}${e.path ? e.path + ": " : ""}${e.message}`
          ).join("; "),
        });
        return { ok: false, errors };
      }
      return handle.reload(next);
    },
    shutdown(): Promise<void> {
      stopping ??= (async () => {
        const grace = plan.config.server.gracePeriod * 1000;
        logger.info("shutting down", { gracePeriod: plan.config.server.gracePeriod });
        try {
          Deno.removeSignalListener("SIGUSR1", onUsr1);
        } catch { /* ignore */ }
        const drained = Promise.all([...running.values()].map((l) => l.shutdown().catch(() => {})));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const graceOver = new Promise<void>((r) => (timer = setTimeout(r, grace)));
        await Promise.race([drained, graceOver]);
        clearTimeout(timer);
        await webSockets.closeAll(1001, "server shutting down", 2000);
        await Promise.race([drained, new Promise((r) => setTimeout(r, 100))]);
        await Promise.all(plan.groups.map((g) => g.stop()));
        await certificates.stop();
        if (admin) await admin.shutdown();
        client.close();
        logger.info("stopped");
        if (ownLogger) await logger.close();
        resolveFinished();
      })();
      return stopping;
    },
    finished,
  };
  return handle;
}

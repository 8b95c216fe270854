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
import { UpstreamClient } from "../upstream/client.ts";
import { WebSocketRegistry } from "../websocket/relay.ts";
import { compilePlan } from "./compile_plan.ts";
import { preflightConfig } from "./preflight.ts";
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
  /** Stops accepting now; resolves once open connections are done. Idempotent. */
  shutdown(): Promise<void>;
  /** Ends every request still waiting for its upstream: its client gets a 503. */
  cut(): void;
  readonly finished: Promise<void>;
}

/**
 * How long a listener keeps retrying to bind an address that a listener it replaces has just
 * let go of (Deno closes a listening socket a moment after `shutdown()`).
 */
const REBIND_MS = 2000;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isAddrInUse(err: unknown): boolean {
  return err instanceof Deno.errors.AddrInUse ||
    (err as { code?: string } | null)?.code === "EADDRINUSE";
}

function listenError(bind: string, port: number, err: unknown): Error {
  const why = isAddrInUse(err)
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
  /** Listeners a reload removed that still drain, with the timer that cuts them. */
  const retiring = new Map<RunningListener, ReturnType<typeof setTimeout>>();
  let generation = 1;
  let plan = compilePlan(config, generation, { registry, logger });
  let admin: { addr: { hostname: string; port: number }; shutdown(): Promise<void> } | null = null;
  let stopping: Promise<void> | null = null;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));

  /** Starts a listener; retries for `rebindMs` while its address is still in use. */
  async function startListener(
    lp: ListenerPlan,
    p: Plan,
    rebindMs = 0,
  ): Promise<RunningListener> {
    const deadline = Date.now() + rebindMs;
    for (;;) {
      try {
        return await openListener(lp, p);
      } catch (err) {
        if (!isAddrInUse(err) || Date.now() >= deadline) throw listenError(lp.bind, lp.port, err);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  async function openListener(lp: ListenerPlan, p: Plan): Promise<RunningListener> {
    const state = { lp, plan: p } as RunningListener;
    // Aborted when the grace period of this listener is over: requests still waiting for their
    // upstream then answer 503 (no per-request bookkeeping: the abort is read lazily).
    const cutter = new AbortController();
    const handler = (
      req: Request,
      info: Deno.ServeHandlerInfo | { remoteAddr: { hostname: string; port: number } },
    ): Promise<Response> =>
      handleRequest(
        req,
        info as Deno.ServeHandlerInfo<Deno.NetAddr>,
        state.plan,
        state.lp,
        services,
        cutter.signal,
      );
    const cut = () => cutter.abort();
    let stopping: Promise<void> | undefined;
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
        shutdown: () => (stopping ??= tl.shutdown()),
        cut,
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
      shutdown: () => (stopping ??= server.shutdown()),
      cut,
      finished: server.finished,
    });
  }

  /** Stops a listener a reload removed: it drains for `graceMs`, then what is left is cut. */
  function retire(l: RunningListener, graceMs: number): void {
    if (retiring.has(l)) return;
    const timer = setTimeout(() => {
      l.cut();
      logger.warn("grace period over: cut the requests still open on a removed listener", {
        listener: l.lp.key,
      });
    }, graceMs);
    retiring.set(l, timer);
    void l.shutdown().catch(() => {}).finally(() => {
      clearTimeout(timer);
      retiring.delete(l);
    });
  }

  /** After a failed reload: opens again the listeners it had stopped, on their old plan. */
  async function restore(stopped: readonly RunningListener[]): Promise<void> {
    for (const old of stopped) {
      try {
        running.set(old.lp.key, await startListener(old.lp, old.plan, REBIND_MS));
      } catch (err) {
        running.delete(old.lp.key);
        if (old.tls) certificates.detach(old.lp.key);
        logger.error("Cannot reopen a listener after a failed reload", {
          listener: old.lp.key,
          error: errorMessage(err),
        });
      }
    }
  }

  async function applyPlan(next: Plan, prev: Plan | null): Promise<void> {
    await certificates.prepare(next);
    const graceMs = next.config.server.gracePeriod * 1000;
    const keeps = (l: RunningListener) => next.listeners.get(l.lp.key)?.tls === l.tls;
    const toStart = [...next.listeners.values()].filter((lp) => {
      const cur = running.get(lp.key);
      return !cur || !keeps(cur);
    });
    const leaving = [...running.values()].filter((l) => !keeps(l));
    // A leaving listener on a port that a new one takes may hold its address (the same bind, or
    // a wildcard next to a specific one): it stops accepting first, so the new one can bind.
    const takesPort = (port: number) => port !== 0 && toStart.some((lp) => lp.port === port);
    const holders = leaving.filter((l) => takesPort(l.lp.port));
    // So may a listener an earlier reload removed: it lets go of its socket a moment after.
    const contested = (lp: ListenerPlan) =>
      lp.port !== 0 &&
      (holders.some((l) => l.lp.port === lp.port) ||
        [...retiring.keys()].some((l) => l.lp.port === lp.port));
    const started: RunningListener[] = [];
    try {
      for (const lp of toStart) if (!contested(lp)) started.push(await startListener(lp, next));
      for (const l of holders) retire(l, graceMs);
      for (const lp of toStart) {
        if (contested(lp)) started.push(await startListener(lp, next, REBIND_MS));
      }
    } catch (err) {
      for (const l of started) {
        if (l.tls) certificates.detach(l.lp.key);
        retire(l, graceMs);
      }
      await restore(holders);
      throw err;
    }
    // Commit: from here on nothing fails.
    for (const l of leaving) {
      running.delete(l.lp.key);
      if (l.tls) certificates.detach(l.lp.key);
      retire(l, graceMs);
    }
    for (const l of started) running.set(l.lp.key, l);
    for (const [key, l] of running) {
      const lp = next.listeners.get(key)!;
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
    // Loaded on first use: Hono and the API cost start-up time that configs without it skip.
    const { serveAdmin } = await import("../admin/app.ts");
    try {
      admin = serveAdmin(cfg.management, {
        status: () =>
          buildStatus(
            plan,
            [...running.values()].map((l) => ({ ...l.addr, tls: l.tls, key: l.lp.key })),
            startedAt,
            client.stats(),
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
            client.stats(),
          ),
        reload: () => handle.reloadFromSource(),
        stats: (window, step) => metrics.stats(window, step),
        certificates: () => certificates.list(),
        lastReload: () => metrics.lastReload(),
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

  /** Validates, compiles and applies `next`; on any error the running config stays. */
  async function applyReload(next: Config): Promise<ReloadResult> {
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
      const errors = err instanceof ConfigError
        ? err.issues
        : [{ path: "", message: errorMessage(err) }];
      metrics.reloadFailed(errors);
      logger.error("reload failed; keeping the running config", {
        errors: errors.map((e) => `${e.path ? e.path + ": " : ""}${e.message}`).join("; "),
      });
      return { ok: false, errors };
    }
  }

  let reloads: Promise<unknown> = Promise.resolve();

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
    reload(next: Config): Promise<ReloadResult> {
      // One at a time (SIGHUP, --watch and the API may fire together): each reload must see the
      // listeners the previous one left, or two of them start the same port.
      const run = reloads.then(() => applyReload(next));
      reloads = run.catch(() => {});
      return run;
    },
    async reloadFromSource(): Promise<ReloadResult> {
      const source = plan.config.source;
      if (!source) {
        return { ok: false, errors: [{ path: "", message: "server was not started from a file" }] };
      }
      let next: Config;
      try {
        next = await loadConfigFile(source);
        // What a start would trip over (unreadable certificates, a log directory that is gone)
        // is reported with key and line, before anything is swapped.
        const problems = await preflightConfig(next);
        if (problems.length > 0) throw new ConfigError(source, problems);
      } catch (err) {
        const errors = err instanceof ConfigError
          ? err.issues
          : [{ path: "", message: errorMessage(err) }];
        metrics.reloadFailed(errors);
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
        for (const t of retiring.values()) clearTimeout(t);
        const all = [...running.values(), ...retiring.keys()];
        const drained = Promise.all(all.map((l) => l.shutdown().catch(() => {})));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const graceOver = new Promise<void>((r) => (timer = setTimeout(r, grace)));
        await Promise.race([drained, graceOver]);
        clearTimeout(timer);
        for (const l of all) l.cut();
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

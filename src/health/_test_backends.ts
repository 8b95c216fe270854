/**
 * Test helpers (private): real loopback backends that answer with their own id, a refused
 * address, a recording logger, and a request loop that drives an upstream group as the proxy
 * does.
 *
 * @module
 */

import type { HealthCheckConfig, PassiveHealthConfig, UpstreamConfig } from "../config/types.ts";
import type { LogFields, Logger } from "../log/types.ts";
import type { Member, UpstreamGroup } from "../balancer/group.ts";

/** A backend answering `<id>` on every path; paths under `/slow` wait until `release()`. */
export interface Backend {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** Status answered on `/health`. */
  healthStatus: number;
  /** Requests seen on `/health`. */
  healthHits: number;
  /** Lets every pending `/slow` request finish. */
  release(): void;
  /** Stops listening (the port then refuses connections). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): void;
  readonly running: boolean;
}

/** Starts a backend on 127.0.0.1 (port 0 unless given). */
export function startBackend(id: string, port = 0): Backend {
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let waiters: (() => void)[] = [];
  const b = {
    id,
    port,
    url: "",
    healthStatus: 200,
    healthHits: 0,
    release() {
      for (const w of waiters) w();
      waiters = [];
    },
    async stop() {
      b.release();
      const s = server;
      server = null;
      if (s) await s.shutdown();
    },
    restart() {
      if (server) return;
      server = Deno.serve({
        hostname: "127.0.0.1",
        port: b.port,
        onListen: () => {},
      }, async (req) => {
        const path = new URL(req.url).pathname;
        if (path.startsWith("/slow")) await new Promise<void>((r) => waiters.push(r));
        if (path.endsWith("/health")) {
          b.healthHits++;
          return new Response(id, { status: b.healthStatus });
        }
        return new Response(id);
      });
      b.port = server.addr.port;
      b.url = `http://127.0.0.1:${b.port}`;
    },
    get running() {
      return server !== null;
    },
  };
  b.restart();
  return b;
}

/** An address nothing listens on (bound, then closed). */
export function refusedUrl(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}`;
}

/** Group entries for `urls` (weights default to 1). */
export function entries(name: string, urls: string[], weights: number[] = []): UpstreamConfig[] {
  return urls.map((url, i) => ({ name, url, weight: weights[i] ?? 1 }));
}

export const NO_CHECKS: HealthCheckConfig = Object.freeze({
  enabled: false,
  path: "/health",
  interval: 30,
  timeout: 5,
  retries: 3,
  rise: 2,
  expectStatus: "2xx",
});

export const PASSIVE: PassiveHealthConfig = Object.freeze({
  enabled: true,
  maxFails: 3,
  failTimeout: 10,
});

/** Result of {@linkcode send}. */
export interface Sent {
  readonly member: Member | null;
  /** Body of the response (the backend id), or "" when every try failed or nothing was live. */
  readonly body: string;
}

/**
 * Sends `GET path` through the group as the proxy does: pick, count in flight, report success
 * or failure, try another member after a connect failure (up to `attempts` further tries).
 */
export async function send(
  group: UpstreamGroup,
  clientIp = "127.0.0.1",
  attempts = 0,
  path = "/",
): Promise<Sent> {
  const tried = new Set<Member>();
  let member: Member | null = null;
  for (let i = 0; i <= attempts; i++) {
    member = group.pick(clientIp, tried);
    if (member === null) break;
    tried.add(member);
    member.state.inFlight++;
    try {
      const res = await fetch(member.target.url + path);
      const body = await res.text();
      member.state.recordSuccess();
      return { member, body };
    } catch (err) {
      member.state.recordFailure(err instanceof Error ? err.message : String(err));
    } finally {
      member.state.inFlight--;
    }
  }
  return { member: null, body: "" };
}

/** A logger that keeps every line. */
export function recordingLogger(): Logger & {
  lines: { level: string; msg: string; fields?: LogFields }[];
} {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => {
    lines.push({ level, msg, fields });
  };
  return {
    lines,
    enabled: () => true,
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    access: () => {},
    reopen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** Polls `cond` every 10 ms until true; returns the milliseconds waited, or throws at `limitMs`. */
export async function waitFor(cond: () => boolean, limitMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > limitMs) throw new Error(`Condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

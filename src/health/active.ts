/**
 * Active health checks: every `interval` seconds each member gets `GET <base path><path>`;
 * `retries` consecutive failures mark it down, `rise` consecutive passes mark it up again.
 *
 * Not the hot path, so this uses `fetch` (which honours `DENO_CERT` for https upstreams) through
 * a private HTTP client without connection reuse: every check opens a fresh connection, which is
 * what "can we reach it" should mean, and `stop()` can close the client without leaks.
 *
 * @module
 */

import type { Logger } from "../log/types.ts";
import { errorText } from "../log/error_text.ts";
import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import type { UpstreamTarget } from "../upstream/target.ts";
import { parseExpectStatus } from "./expect_status.ts";
import type { HostState } from "./host_state.ts";

/** `[sites.proxy.health_check]` as the checker runs it (the plan converts it once). */
export interface ActiveHealth {
  readonly enabled: boolean;
  /** Appended to each member's base path. */
  readonly path: string;
  /** Between the end of one check of a member and the start of the next. */
  readonly intervalMs: number;
  /** For one check, connection included. */
  readonly timeoutMs: number;
  /** Consecutive failures that mark a member down. */
  readonly retries: number;
  /** Consecutive passes that mark it up again. */
  readonly rise: number;
  /** "2xx", "200", "200-299", "2xx,3xx" … */
  readonly expectStatus: string;
}

/** One member as the checker sees it. */
export interface CheckTarget {
  readonly target: UpstreamTarget;
  readonly state: HostState;
}

/** Options of {@linkcode ActiveHealthChecker}. */
export interface ActiveHealthOptions {
  /** Site name, for log fields. */
  readonly site: string;
  /** Group name, for log fields. */
  readonly group: string;
  readonly members: readonly CheckTarget[];
  readonly config: ActiveHealth;
  /** Receives "upstream down" (warn) and "upstream up" (info). @default no logging */
  readonly logger?: Logger;
}

/** Runs the periodic checks of one group. */
export class ActiveHealthChecker {
  readonly #opts: ActiveHealthOptions;
  readonly #expect: (status: number) => boolean;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #running = new Set<Promise<void>>();
  #abort: AbortController | null = null;
  #client: Deno.HttpClient | null = null;

  constructor(opts: ActiveHealthOptions) {
    this.#opts = opts;
    this.#expect = parseExpectStatus(opts.config.expectStatus);
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.#abort !== null;
  }

  /**
   * Starts checking; the first round runs immediately. Takes over the members' active verdict
   * from any earlier checker (see `HostState.claimActive`). Idempotent.
   */
  start(): void {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.#client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    for (const m of this.#opts.members) m.state.claimActive(this);
    for (const m of this.#opts.members) this.#run(m);
  }

  /** Stops the timers, aborts checks in flight and resolves once they have all finished. */
  async stop(): Promise<void> {
    const abort = this.#abort;
    if (!abort) return;
    this.#abort = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    abort.abort();
    await Promise.allSettled([...this.#running]);
    this.#client?.close();
    this.#client = null;
  }

  /** Checks one member once, then schedules the next check unless stopped. */
  #run(m: CheckTarget): void {
    const abort = this.#abort;
    if (!abort) return;
    const p = this.#checkOnce(m, abort.signal).then(() => {
      this.#running.delete(p);
      if (this.#abort !== abort) return;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#run(m);
      }, this.#opts.config.intervalMs);
      this.#timers.add(timer);
    });
    this.#running.add(p);
  }

  async #checkOnce(m: CheckTarget, stopped: AbortSignal): Promise<void> {
    const { config, logger, site, group } = this.#opts;
    const t = m.target;
    const url = `${t.origin}${t.basePath}${config.path.startsWith("/") ? "" : "/"}${config.path}`;
    let ok = false;
    let error = "";
    try {
      const res = await fetch(url, {
        client: this.#client ?? undefined,
        redirect: "manual",
        signal: AbortSignal.any([stopped, AbortSignal.timeout(config.timeoutMs)]),
      });
      await res.body?.cancel();
      ok = this.#expect(res.status);
      if (!ok) error = `health check status ${res.status}`;
    } catch (err) {
      if (stopped.aborted) return; // stopping: not a verdict
      // bws itself had no descriptor for the check: nothing was learnt about the upstream.
      if (isDescriptorShortage(err)) return;
      error = err instanceof DOMException && err.name === "TimeoutError"
        ? `health check timed out after ${config.timeoutMs / 1000}s`
        : `health check failed: ${errorText(err, { cause: true })}`;
    }
    if (stopped.aborted) return;
    const changed = m.state.recordCheck(this, ok, config.retries, config.rise, error);
    if (changed === false) {
      logger?.warn("upstream down", { site, group, upstream: t.url, error });
    } else if (changed === true) {
      logger?.info("upstream up", { site, group, upstream: t.url });
    }
  }
}

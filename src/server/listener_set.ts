/**
 * The server's listeners: opened for a plan, moved to a new plan on reload (ports opened,
 * closed, switched between plain and TLS), drained for the grace period when removed, and
 * restored when a reload fails half-way.
 *
 * @module
 */

import type { ListenerPlan, Plan } from "../plan/plan_types.ts";
import type { TlsListener } from "../tls/listener.ts";
import {
  FrontListener,
  type ListenerCertificates,
  type ListenerContext,
} from "./front_listener.ts";
import { errorText } from "../log/error_text.ts";

/**
 * How long a listener keeps retrying to bind an address that a listener it replaces has just
 * let go of.
 */
const REBIND_MS = 2000;

function isAddrInUse(err: unknown): boolean {
  return err instanceof Deno.errors.AddrInUse ||
    (err as { code?: string } | null)?.code === "EADDRINUSE";
}

/** The error a listener that cannot bind rejects with. */
export function listenError(bind: string, port: number, err: unknown): Error {
  const why = isAddrInUse(err)
    ? "address in use"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : errorText(err);
  return new Error(`Cannot listen on ${bind}:${port}: ${why}`, { cause: err });
}

/**
 * Where TLS listeners get their certificates: a `CertificateSet`, or in a worker thread the
 * copy its supervisor hands over.
 */
export interface CertificateSource {
  /** Loads what `plan` needs; throws (naming the file) when it cannot. */
  prepare(plan: Plan): Promise<void>;
  /** The certificates of a TLS listener about to start. */
  forListener(lp: ListenerPlan, plan: Plan): Promise<ListenerCertificates>;
  attach(listenerKey: string, tl: TlsListener): void;
  detach(listenerKey: string): void;
  /** After a reload: sets `plan`'s certificates on a running listener. */
  update(lp: ListenerPlan, plan: Plan, tl: TlsListener): Promise<void>;
}

/** The listeners of one server. */
export class ListenerSet {
  readonly #ctx: ListenerContext;
  readonly #certificates: CertificateSource;
  readonly running = new Map<string, FrontListener>();
  /** Listeners a reload removed that still drain, with the timer that cuts them. */
  readonly retiring = new Map<FrontListener, ReturnType<typeof setTimeout>>();

  constructor(ctx: ListenerContext, certificates: CertificateSource) {
    this.#ctx = ctx;
    this.#certificates = certificates;
  }

  /** Every listener still open (running and retiring). */
  all(): FrontListener[] {
    return [...this.running.values(), ...this.retiring.keys()];
  }

  /** Starts a listener; retries for `rebindMs` while its address is still in use. */
  async #start(lp: ListenerPlan, plan: Plan, rebindMs = 0): Promise<FrontListener> {
    const deadline = Date.now() + rebindMs;
    for (;;) {
      try {
        const certs = lp.tls ? await this.#certificates.forListener(lp, plan) : null;
        const l = await FrontListener.open(lp, plan, this.#ctx, certs);
        if (l.tlsListener !== null) this.#certificates.attach(lp.key, l.tlsListener);
        return l;
      } catch (err) {
        if (!isAddrInUse(err) || Date.now() >= deadline) throw listenError(lp.bind, lp.port, err);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  /** Stops a listener a reload removed: it drains for `graceMs`, then what is left is cut. */
  #retire(l: FrontListener, graceMs: number): void {
    if (this.retiring.has(l)) return;
    const timer = setTimeout(() => {
      l.cut();
      this.#ctx.logger().warn(
        "grace period over: cut the requests still open on a removed listener",
        { listener: l.lp.key },
      );
    }, graceMs);
    this.retiring.set(l, timer);
    void l.shutdown().catch(() => {}).finally(() => {
      clearTimeout(timer);
      this.retiring.delete(l);
    });
  }

  /** After a failed reload: opens again the listeners it had stopped, on their old plan. */
  async #restore(stopped: readonly FrontListener[]): Promise<void> {
    for (const old of stopped) {
      try {
        this.running.set(old.lp.key, await this.#start(old.lp, old.plan, REBIND_MS));
      } catch (err) {
        this.running.delete(old.lp.key);
        if (old.tls) this.#certificates.detach(old.lp.key);
        this.#ctx.logger().error("Cannot reopen a listener after a failed reload", {
          listener: old.lp.key,
          error: errorText(err),
        });
      }
    }
  }

  /**
   * Brings the listeners in line with `next`: opens new ports, retires removed ones, moves the
   * kept ones to the new plan. On any error the listeners are as they were and it throws.
   */
  async apply(next: Plan, prev: Plan | null): Promise<void> {
    const certificates = this.#certificates;
    await certificates.prepare(next);
    const graceMs = next.gracePeriodMs;
    const keeps = (l: FrontListener) => next.listeners.get(l.lp.key)?.tls === l.tls;
    const toStart = [...next.listeners.values()].filter((lp) => {
      const cur = this.running.get(lp.key);
      return !cur || !keeps(cur);
    });
    const leaving = [...this.running.values()].filter((l) => !keeps(l));
    // A leaving listener on a port that a new one takes may hold its address (the same bind, or
    // a wildcard next to a specific one): it stops accepting first, so the new one can bind.
    const takesPort = (port: number) => port !== 0 && toStart.some((lp) => lp.port === port);
    const holders = leaving.filter((l) => takesPort(l.lp.port));
    // So may a listener an earlier reload removed: it lets go of its socket a moment after.
    const contested = (lp: ListenerPlan) =>
      lp.port !== 0 &&
      (holders.some((l) => l.lp.port === lp.port) ||
        [...this.retiring.keys()].some((l) => l.lp.port === lp.port));
    const started: FrontListener[] = [];
    try {
      for (const lp of toStart) if (!contested(lp)) started.push(await this.#start(lp, next));
      for (const l of holders) this.#retire(l, graceMs);
      for (const lp of toStart) {
        if (contested(lp)) started.push(await this.#start(lp, next, REBIND_MS));
      }
    } catch (err) {
      for (const l of started) {
        if (l.tls) certificates.detach(l.lp.key);
        this.#retire(l, graceMs);
      }
      await this.#restore(holders);
      throw err;
    }
    // Commit: from here on nothing fails.
    for (const l of leaving) {
      this.running.delete(l.lp.key);
      if (l.tls) certificates.detach(l.lp.key);
      this.#retire(l, graceMs);
    }
    for (const l of started) this.running.set(l.lp.key, l);
    for (const [key, l] of this.running) {
      const lp = next.listeners.get(key)!;
      l.update(lp, next);
      if (l.tlsListener && prev) await certificates.update(lp, next, l.tlsListener);
    }
  }

  /**
   * Graceful stop of every listener: stop accepting, let requests finish for `graceMs`, then cut
   * what is left. Resolves once all are closed (or shortly after the cut).
   */
  async shutdown(graceMs: number): Promise<void> {
    for (const t of this.retiring.values()) clearTimeout(t);
    const all = this.all();
    const drained = Promise.all(all.map((l) => l.shutdown().catch(() => {})));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([drained, graceOver]);
    clearTimeout(timer);
    for (const l of all) l.cut();
  }

  /** Waits (briefly) for listeners that were cut to close their connections. */
  async settle(ms: number): Promise<void> {
    const all = this.all();
    await Promise.race([
      Promise.all(all.map((l) => l.finished)),
      new Promise((r) => setTimeout(r, ms)),
    ]);
  }
}

/**
 * Per-manager HTTP settings for acme-client. acme-client sends every request through one shared
 * axios instance; a request interceptor reads the calling manager's settings (trusted CA
 * certificates, abort signal, timeout) from an AsyncLocalStorage context, so several managers
 * with different CAs can coexist in one process.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { Agent } from "node:https";
import * as acme from "acme-client";

/** Request settings of one manager. */
export interface AcmeTransport {
  /** HTTPS agent trusting the manager's CA certificates, or undefined for the system store. */
  readonly agent?: Agent;
  /** Aborts every request made in this context. */
  readonly signal: AbortSignal;
  /** Per-request timeout in milliseconds. */
  readonly timeoutMs: number;
}

const context = new AsyncLocalStorage<AcmeTransport>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const instance = acme.axios;
  // The manager retries whole attempts with its own backoff; retrying single requests inside an
  // attempt (5 times, up to 25 s apart) would hide failures and delay stop().
  (instance.defaults as any).acmeSettings.retryMaxAttempts = 0;
  instance.interceptors.request.use((config) => {
    const t = context.getStore();
    if (!t) return config;
    t.signal.throwIfAborted();
    if (t.agent) config.httpsAgent = t.agent;
    config.signal = t.signal;
    config.timeout = t.timeoutMs;
    return config;
  });
}

/** Creates the transport settings for one manager. */
export function createTransport(
  caCerts: readonly string[] | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): AcmeTransport {
  install();
  const agent = caCerts && caCerts.length > 0
    ? new Agent({ ca: [...caCerts], keepAlive: false })
    : undefined;
  return { agent, signal, timeoutMs };
}

/** Runs `fn` so that every acme-client request it makes uses `transport`. */
export function withTransport<T>(transport: AcmeTransport, fn: () => Promise<T>): Promise<T> {
  return context.run(transport, fn);
}

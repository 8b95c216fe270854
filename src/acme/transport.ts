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
import { rootCertificates } from "node:tls";
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

/**
 * The CA certificates to trust when a manager is given none: Deno's `fetch` and TLS connections
 * honour `DENO_CERT` (an extra PEM CA file, e.g. a private ACME CA such as step-ca or Pebble),
 * but `node:https`, which acme-client uses, does not. So bws reads it here, adding it to the
 * bundled roots; without `DENO_CERT` the default store is used unchanged.
 */
export function defaultCaCerts(): string[] | undefined {
  let file: string | undefined;
  try {
    file = Deno.env.get("DENO_CERT");
  } catch {
    return undefined; // no --allow-env: nothing to add
  }
  if (!file) return undefined;
  try {
    return [...rootCertificates, Deno.readTextFileSync(file)];
  } catch {
    return undefined; // Deno itself reports an unreadable DENO_CERT at start-up
  }
}

/** Creates the transport settings for one manager (`caCerts` undefined: {@link defaultCaCerts}). */
export function createTransport(
  caCerts: readonly string[] | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): AcmeTransport {
  install();
  caCerts ??= defaultCaCerts();
  const agent = caCerts && caCerts.length > 0
    ? new Agent({ ca: [...caCerts], keepAlive: false })
    : undefined;
  return { agent, signal, timeoutMs };
}

/** Runs `fn` so that every acme-client request it makes uses `transport`. */
export function withTransport<T>(transport: AcmeTransport, fn: () => Promise<T>): Promise<T> {
  return context.run(transport, fn);
}

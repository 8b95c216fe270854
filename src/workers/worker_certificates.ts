/**
 * A worker thread's certificates: the supervisor loads the PEM files and runs ACME, and hands
 * each TLS listener's certificates over with every config ({@linkcode WorkerCertificates.set})
 * and each certificate it obtains later ({@linkcode WorkerCertificates.replace}); the worker
 * sets them on its own TLS listeners.
 *
 * @module
 */

import type { ListenerPlan } from "../plan/plan_types.ts";
import type { ListenerCertificates } from "../server/front_listener.ts";
import type { CertificateSource } from "../server/listener_set.ts";
import type { CertificatePair } from "../tls/certs.ts";
import type { TlsListener } from "../tls/listener.ts";
import type { ListenerCertificatesData } from "./protocol.ts";

/** The {@linkcode CertificateSource} of a worker's listeners. */
export class WorkerCertificates implements CertificateSource {
  readonly #byListener = new Map<string, ListenerCertificatesData>();
  readonly #listeners = new Map<string, TlsListener>();

  /**
   * The certificates of the config about to be applied (a listener it does not name keeps its
   * own: it may be reopened on the old config if the reload fails).
   */
  set(entries: readonly (readonly [string, ListenerCertificatesData])[]): void {
    for (const [key, data] of entries) this.#byListener.set(key, data);
  }

  /** A certificate the supervisor obtained for `name` on listener `key`. */
  async replace(key: string, name: string, pair: CertificatePair): Promise<void> {
    const data = this.#byListener.get(key);
    if (data !== undefined) {
      const pairs = data.pairs.filter(([n]) => n !== name);
      this.#byListener.set(key, { ...data, pairs: [...pairs, [name, pair]] });
    }
    await this.#listeners.get(key)?.setCertificate(name, pair);
  }

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  forListener(lp: ListenerPlan): Promise<ListenerCertificates> {
    const data = this.#byListener.get(lp.key);
    return Promise.resolve({
      map: new Map(data?.pairs ?? []),
      defaultName: data?.defaultName,
    });
  }

  attach(listenerKey: string, tl: TlsListener): void {
    this.#listeners.set(listenerKey, tl);
  }

  detach(listenerKey: string): void {
    this.#listeners.delete(listenerKey);
  }

  async update(lp: ListenerPlan, _plan: unknown, tl: TlsListener): Promise<void> {
    const data = this.#byListener.get(lp.key);
    for (const [name, pair] of data?.pairs ?? []) {
      if (pair !== null) await tl.setCertificate(name, pair);
    }
  }
}

/**
 * Certificates for the TLS listeners: PEM files (read at start and on each reload) and
 * ACME-managed names (one manager per site).
 *
 * @module
 */

import type { CertificateInfo } from "../admin/types.ts";
import type { SiteConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { CertificatePair } from "../tls/certs.ts";
import type { TlsListener } from "../tls/listener.ts";
import type { AcmeManager } from "../acme/manager.ts";
import type { SharedAcme } from "../cluster/cluster.ts";
import { siteNames } from "../plan/compile_plan.ts";
import type { ListenerPlan, Plan } from "../plan/plan_types.ts";

type AcmeModule = typeof import("../acme/manager.ts");
let acmeModule: AcmeModule | null = null;

/**
 * The ACME module, loaded when a plan first has an auto_cert site: acme-client and the Node
 * HTTPS stack it pulls in cost a start ~150 ms and tens of MB that other configs never need.
 */
async function loadAcme(): Promise<AcmeModule> {
  return acmeModule ??= await import("../acme/manager.ts");
}

interface Managed {
  readonly key: string;
  readonly manager: AcmeManager;
  readonly names: string[];
  current: CertificatePair | null;
  /** Listener keys serving this site. */
  listeners: Set<string>;
}

function fileKey(site: SiteConfig): string {
  return `${site.ssl.certFile}\n${site.ssl.keyFile}`;
}

/** The identity of an ACME manager: a site keeps its manager across reloads while these stay
 * the same (JSON of a string array: one unambiguous key string for the map). */
function acmeKey(site: SiteConfig): string {
  const a = site.ssl.acme;
  return JSON.stringify([site.name, siteNames(site), a.directoryUrl, a.storageDir, a.email]);
}

/** ACME can only validate concrete names over HTTP-01. */
function acmeNames(site: SiteConfig): string[] {
  return siteNames(site).filter((n) => !n.startsWith("*."));
}

export class CertificateSet {
  readonly #logger: () => Logger;
  #files = new Map<string, CertificatePair>();
  #preparedFor: Plan | null = null;
  readonly #listeners = new Map<string, TlsListener>();
  readonly #managed = new Map<string, Managed>();
  readonly #shared: SharedAcme | null;
  readonly #checkIntervalMs: number | undefined;

  /**
   * @param shared the fleet's ACME state (`[cluster]`); null keeps it in storage_dir alone
   * @param checkIntervalMs between checks of each ACME certificate (`StartOptions`); default:
   *   the manager's (12 h)
   */
  constructor(
    logger: () => Logger,
    shared: SharedAcme | null = null,
    checkIntervalMs?: number,
  ) {
    this.#logger = logger;
    this.#shared = shared;
    this.#checkIntervalMs = checkIntervalMs;
  }

  /**
   * Loads every certificate file the plan needs; throws a clear error naming the file. Files
   * are read again for each new plan, so a reload picks up a certificate renewed in place (the
   * certbot + SIGHUP workflow); an unchanged file keeps its pair, so listeners do not hand over.
   */
  async prepare(plan: Plan): Promise<void> {
    if (this.#preparedFor === plan) return;
    if (plan.sites.some((site) => site.tls && site.config.ssl.autoCert)) await loadAcme();
    const files = new Map<string, CertificatePair>();
    for (const site of plan.sites) {
      const ssl = site.config.ssl;
      if (!site.tls || ssl.autoCert || !ssl.certFile) continue;
      const key = fileKey(site.config);
      if (files.has(key)) continue;
      // node:crypto (behind the loader) is loaded only for configs with certificate files.
      const { loadCertificateFiles } = await import("../tls/certs.ts");
      const fresh = await loadCertificateFiles(ssl.certFile, ssl.keyFile);
      const old = this.#files.get(key);
      const same = old && old.certPem === fresh.certPem && old.keyPem === fresh.keyPem;
      files.set(key, same ? old : fresh);
    }
    this.#files = files;
    this.#preparedFor = plan;
  }

  async #pairsFor(lp: ListenerPlan): Promise<Map<string, CertificatePair>> {
    const map = new Map<string, CertificatePair>();
    for (const site of lp.sites) {
      const cfg = site.config;
      let pair: CertificatePair | null = null;
      if (cfg.ssl.autoCert) {
        const m = this.#managerFor(cfg);
        pair = m.current ?? await m.manager.loadStored(m.names).catch(() => null);
        m.current = pair;
      } else {
        pair = this.#files.get(fileKey(cfg)) ?? null;
      }
      if (pair === null) continue;
      for (const name of siteNames(cfg)) if (!map.has(name)) map.set(name, pair);
    }
    return map;
  }

  /** The certificates and default name for a listener about to start. */
  async forListener(
    lp: ListenerPlan,
    plan: Plan,
  ): Promise<{ map: Map<string, CertificatePair>; defaultName: string | undefined }> {
    await this.prepare(plan);
    const map = await this.#pairsFor(lp);
    const fallback = lp.fallback.kind === "site" ? lp.fallback.site : lp.sites[0];
    return { map, defaultName: fallback ? siteNames(fallback.config)[0] : undefined };
  }

  attach(listenerKey: string, tl: TlsListener): void {
    this.#listeners.set(listenerKey, tl);
  }

  detach(listenerKey: string): void {
    this.#listeners.delete(listenerKey);
  }

  /** After a reload: sets the plan's certificates on a running listener; resolves once new
   * handshakes use them, so a reload that returned serves the new certificate. */
  async update(lp: ListenerPlan, plan: Plan, tl: TlsListener): Promise<void> {
    await this.prepare(plan);
    const pairs = await this.#pairsFor(lp);
    await Promise.all([...pairs].map(([name, pair]) => tl.setCertificate(name, pair)));
  }

  #managerFor(site: SiteConfig): Managed {
    const key = acmeKey(site);
    let m = this.#managed.get(key);
    if (!m) {
      const a = site.ssl.acme;
      m = {
        key,
        manager: new acmeModule!.AcmeManager({
          directoryUrl: a.directoryUrl,
          email: a.email,
          storageDir: a.storageDir,
          ...(this.#shared ? { store: this.#shared.store(a) } : {}),
          renewBeforeDays: a.renewBeforeDays,
          ...(this.#checkIntervalMs ? { checkIntervalMs: this.#checkIntervalMs } : {}),
          logger: this.#logger(),
        }),
        names: acmeNames(site),
        current: null,
        listeners: new Set(),
      };
      this.#managed.set(key, m);
    }
    return m;
  }

  /** Starts ACME management for the plan's auto_cert sites; stops it for removed ones. */
  manage(plan: Plan): void {
    const wanted = new Set<string>();
    for (const [lkey, lp] of plan.listeners) {
      if (!lp.tls) continue;
      for (const site of lp.sites) {
        if (!site.config.ssl.autoCert) continue;
        const m = this.#managerFor(site.config);
        wanted.add(m.key);
        if (m.listeners.has(lkey)) continue;
        const first = m.listeners.size === 0;
        m.listeners.add(lkey);
        if (!first) continue;
        const names = siteNames(site.config);
        m.manager.manage(m.names, (pair) => {
          m.current = pair;
          for (const key of m.listeners) {
            const tl = this.#listeners.get(key);
            if (tl) { for (const name of names) void tl.setCertificate(name, pair); }
          }
          this.#logger().info("certificate ready", {
            site: site.name,
            names: m.names.join(","),
            notAfter: pair.notAfter.toISOString(),
          });
        });
      }
    }
    for (const [key, m] of this.#managed) {
      if (!wanted.has(key)) {
        this.#managed.delete(key);
        void m.manager.stop();
      }
    }
  }

  /**
   * The certificate each TLS site of the current plan serves, for the management API: the
   * loaded PEM pair, or the ACME one (`notAfter` null while it is still being obtained).
   */
  list(now: number = Date.now()): CertificateInfo[] {
    const out: CertificateInfo[] = [];
    for (const site of this.#preparedFor?.sites ?? []) {
      if (!site.tls) continue;
      const cfg = site.config;
      const acme = cfg.ssl.autoCert;
      const pair = acme
        ? this.#managed.get(acmeKey(cfg))?.current ?? null
        : this.#files.get(fileKey(cfg)) ?? null;
      const notAfter = pair?.notAfter.getTime() ?? null;
      out.push({
        site: site.name,
        source: acme ? "acme" : "file",
        file: acme ? null : cfg.ssl.certFile,
        names: pair?.names ?? (acme ? acmeNames(cfg) : []),
        notAfter: notAfter === null ? null : new Date(notAfter).toISOString(),
        daysLeft: notAfter === null ? null : Math.floor((notAfter - now) / 86_400_000),
      });
    }
    return out;
  }

  /** The HTTP-01 answer for `token`: from this process's orders, else (in a fleet) from the
   *  answers other instances published, waiting at most Redis's short request deadline. */
  challengeResponse(token: string): string | null | Promise<string | null> {
    for (const m of this.#managed.values()) {
      const answer = m.manager.challengeResponse(token);
      if (answer !== null) return answer;
    }
    return this.#shared?.readChallenge(token) ?? null;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#managed.values()].map((m) => m.manager.stop()));
    this.#managed.clear();
    this.#listeners.clear();
  }
}

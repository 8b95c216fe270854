/**
 * `[cluster]`: what one bws shares with the rest of its fleet through Redis, behind one object
 * the server holds for its lifetime.
 *
 * - ACME stores per CA (`acme`), so any instance answers the CA's HTTP-01 validation, one
 *   instance orders or renews a certificate at a time, and the others take the result.
 * - Rate-limit bucket stores (`bucketStores`), handed to the plan compiler.
 * - Heartbeats and the fleet list (`instances`), for `/api/status`.
 *
 * Nothing here is needed to serve: a start does not wait for Redis longer than a second, and while
 * Redis is down or slow every part falls back to local state (see each module), with one log line
 * when Redis goes away and one when it is back. A worker thread of the multi-core mode
 * (`server.workers`, src/workers) can make its own link and `SharedBuckets` with the same prefix:
 * the buckets live in Redis, so workers and instances share them alike.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import type { AcmeStore } from "../acme/store.ts";
import { AcmeStorage } from "../acme/storage.ts";
import type { ClusterConfig } from "../config/types.ts";
import type { BucketStoreFactory } from "../edge/rate_limit.ts";
import type { Logger } from "../log/types.ts";
import { type InstanceInfo, InstanceRegistry } from "./instances.ts";
import { CertificateChannel, RedisAcmeStore } from "./redis_acme_store.ts";
import { SharedBuckets } from "./redis_bucket_store.ts";
import { connectRedis, type LinkState, type RedisLink } from "./redis_link.ts";
import { RedisLocks } from "./renewal_lock.ts";

/** What the certificate manager needs from the fleet. */
export interface SharedAcme {
  /** The store of one CA directory, with `storageDir` as this instance's local copy. */
  store(acme: { readonly directoryUrl: string; readonly storageDir: string }): AcmeStore;
  /** An HTTP-01 answer any instance published (null when unknown or Redis cannot say). */
  readChallenge(token: string): Promise<string | null>;
}

/** Timings; the defaults suit production, tests shorten them (`StartOptions.clusterTuning`). */
export interface ClusterTuning {
  /** Renewal lock expiry after its holder's last renewal. @default 60_000 */
  readonly lockTtlMs: number;
  /** Heartbeat interval. @default 5000 */
  readonly heartbeatMs: number;
  /** Deadline of a Redis command a request waits for. @default 100 */
  readonly requestTimeoutMs: number;
  /** Deadline of background commands. @default 1000 */
  readonly backgroundTimeoutMs: number;
  /** Longest wait for Redis at start. @default 1000 */
  readonly startWaitMs: number;
}

const DEFAULTS: ClusterTuning = {
  lockTtlMs: 60_000,
  heartbeatMs: 5000,
  requestTimeoutMs: 100,
  backgroundTimeoutMs: 1000,
  startWaitMs: 1000,
};

/** The host name, or "bws-<pid>" where it cannot be read. */
function defaultInstanceName(): string {
  try {
    return Deno.hostname();
  } catch {
    return `bws-${Deno.pid}`;
  }
}

/** The fleet membership of this process (see the module doc). */
export class Cluster {
  readonly config: ClusterConfig;
  readonly link: RedisLink;
  readonly name: string;
  readonly acme: SharedAcme;
  readonly #buckets: SharedBuckets;
  readonly #registry: InstanceRegistry;
  readonly #locks: RedisLocks;
  readonly #channel: CertificateChannel;
  readonly #stores = new Map<string, RedisAcmeStore>();
  readonly #logger: () => Logger;

  private constructor(
    config: ClusterConfig,
    logger: () => Logger,
    tuning: ClusterTuning,
  ) {
    this.config = config;
    this.#logger = logger;
    this.name = config.instanceName || defaultInstanceName();
    const prefix = config.keyPrefix;
    this.link = connectRedis(config.redisUrl, {
      requestTimeoutMs: tuning.requestTimeoutMs,
      backgroundTimeoutMs: tuning.backgroundTimeoutMs,
      clientName: `bws:${this.name}`.replace(/[^\x21-\x7e]/g, "_"),
    });
    this.link.onState((state, detail) => this.#logState(state, detail));
    this.#buckets = new SharedBuckets(this.link, `${prefix}rl:`);
    this.#locks = new RedisLocks(this.link, {
      ttlMs: tuning.lockTtlMs,
      owner: this.name,
      onLost: (key, why) =>
        logger().warn(`Lost the renewal lock "${key}": ${why}`, { instance: this.name }),
    });
    this.#channel = new CertificateChannel(this.link, prefix);
    this.#registry = new InstanceRegistry(this.link, {
      key: `${prefix}instances`,
      name: this.name,
      version: denoJson.version,
      intervalMs: tuning.heartbeatMs,
      onNameClash: (name) =>
        logger().warn(
          `Another running instance also calls itself "${name}": set [cluster] instance_name`,
        ),
    });
    this.acme = {
      store: (acme) => this.#acmeStore(acme.directoryUrl, acme.storageDir),
      readChallenge: async (token) => {
        if (!/^[A-Za-z0-9_-]+$/.test(token)) return null;
        try {
          const v = await this.link.command(["GET", `${prefix}acme:challenge:${token}`], {
            urgent: true,
          });
          return typeof v === "string" ? v : null;
        } catch {
          return null;
        }
      },
    };
  }

  /**
   * Connects to Redis (waiting at most `startWaitMs`: an unreachable Redis is logged, and the
   * instance starts on local state) and starts the heartbeat.
   */
  static async start(
    config: ClusterConfig,
    logger: () => Logger,
    tuning: Partial<ClusterTuning> = {},
  ): Promise<Cluster> {
    const t = { ...DEFAULTS, ...tuning };
    const cluster = new Cluster(config, logger, t);
    if (await cluster.link.waitUp(t.startWaitMs)) {
      logger().info("joined the fleet", {
        instance: cluster.name,
        redis: cluster.link.label,
        keyPrefix: config.keyPrefix,
      });
    }
    cluster.#registry.start();
    return cluster;
  }

  /** Rate-limit bucket stores in Redis (with a local fallback), for the plan compiler. */
  get bucketStores(): BucketStoreFactory {
    return this.#buckets.factory;
  }

  /** The fleet as last seen, this instance first. */
  instances(): InstanceInfo[] {
    return this.#registry.list();
  }

  /** Whether `config` is the one running (a change needs a restart). */
  sameSettings(config: ClusterConfig | null): boolean {
    return config !== null && config.redisUrl === this.config.redisUrl &&
      config.keyPrefix === this.config.keyPrefix &&
      config.instanceName === this.config.instanceName;
  }

  /** Leaves the fleet list and closes the connections. */
  async close(): Promise<void> {
    await this.#registry.stop();
    this.#channel.close();
    this.#buckets.close();
    await this.link.close();
  }

  #acmeStore(directoryUrl: string, storageDir: string): RedisAcmeStore {
    const key = `${directoryUrl}\n${storageDir}`;
    let store = this.#stores.get(key);
    if (!store) {
      store = new RedisAcmeStore({
        link: this.link,
        prefix: this.config.keyPrefix,
        directoryUrl,
        local: new AcmeStorage(storageDir),
        locks: this.#locks,
        channel: this.#channel,
        owner: this.name,
      });
      this.#stores.set(key, store);
    }
    return store;
  }

  /** What the log last said about Redis: a worse state is logged, the same one is not again. */
  #said: "ok" | "slow" | "down" = "ok";

  #logState(state: LinkState, detail: string): void {
    const log = this.#logger();
    const fields = { redis: this.link.label, ...(detail ? { error: detail } : {}) };
    if (state === "down" && this.#said !== "down") {
      this.#said = "down";
      log.warn(
        "Cannot reach Redis: serving with local certificates and rate limits until it is back",
        fields,
      );
    } else if (state === "slow" && this.#said === "ok") {
      this.#said = "slow";
      log.warn(
        "Redis is too slow: serving with local rate limits until it answers in time",
        fields,
      );
    } else if (state === "up" && this.#said !== "ok") {
      this.#said = "ok";
      log.info("Redis is reachable again: sharing state with the fleet", fields);
    }
  }
}

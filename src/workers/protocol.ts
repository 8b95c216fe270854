/**
 * What the supervisor and its worker threads say to each other (`server.workers`, SPEC 12): the
 * start-up message, the methods each side serves over {@linkcode Rpc}, and the shapes they
 * carry. Everything here is structured-cloned, so it is plain data: a worker compiles its own
 * plan from the validated config (a plan holds class instances, which do not cross threads).
 *
 * @module
 */

import type { Config, LogLevel } from "../config/types.ts";
import type { HostTableShape } from "../health/host_cells.ts";
import type { LogFields } from "../log/types.ts";
import type { AccessEntry } from "../log/types.ts";
import type { CertificatePair } from "../tls/certs.ts";

/** The first message a worker receives (before any call). */
export interface WorkerInit {
  readonly type: "init";
  /** 1..n; a restarted worker keeps its id. */
  readonly id: number;
  /** The supervisor's `performance.timeOrigin`, to align health clocks. */
  readonly clockOrigin: number;
  readonly memory: SharedMemory;
  /** `-v`: overrides `[logging] level`. */
  readonly logLevel?: LogLevel;
  /** The supervisor writes access lines in its `[logging]` format: the worker formats them
   * (false: an embedding program's own logger, which gets each entry). */
  readonly formatAccess: boolean;
}

/** The shared memory every worker maps. */
export interface SharedMemory {
  /** Upstream member state (health, ejections, in-flight counts). */
  readonly hosts: HostTableShape;
  /** Rate-limit buckets. */
  readonly buckets: SharedArrayBuffer;
  /** Every worker's connections per client address (`max_connections_per_ip`), by id - 1. */
  readonly addresses: readonly SharedArrayBuffer[];
  /** This worker's per-second request series (survives its restarts). */
  readonly series: SharedArrayBuffer;
}

/** A TLS listener's certificates: name → pair, and the name answering without SNI. */
export interface ListenerCertificatesData {
  readonly pairs: readonly (readonly [string, CertificatePair | null])[];
  readonly defaultName: string | undefined;
}

/** Arguments of the worker's `apply`. */
export interface ApplyArgs {
  readonly config: Config;
  readonly generation: number;
  /** Key → slot of every upstream member in the shared host table. */
  readonly slots: readonly (readonly [string, number])[];
  /** Listener key → port to bind, for listeners whose config says port 0. */
  readonly ports: readonly (readonly [string, number])[];
  /** Listener keys to check for another process holding the address before binding. */
  readonly probe: readonly string[];
  /** Listener key → certificates, for the TLS listeners. */
  readonly certificates: readonly (readonly [string, ListenerCertificatesData])[];
}

/** A listener a worker runs. */
export interface BoundListener {
  readonly key: string;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
}

/** What a worker reports about itself. */
export interface WorkerStats {
  /** Prometheus text of its own metrics (requests, bytes, refusals, upstream sockets). */
  readonly metrics: string;
  readonly connections: number;
  readonly inFlight: number;
  readonly requests: number;
  /** Its upstream keep-alive sockets per origin. */
  readonly pool: readonly {
    readonly origin: string;
    readonly idle: number;
    readonly busy: number;
  }[];
}

/** One log record relayed to the supervisor, which writes it. */
export type LogRecord =
  | { readonly kind: "access"; readonly entry: AccessEntry }
  /** Access lines already formatted (each ends in a newline), in arrival order. */
  | { readonly kind: "access_lines"; readonly text: string }
  | {
    readonly kind: "line";
    readonly level: LogLevel;
    readonly msg: string;
    readonly fields?: LogFields;
  };

/** Methods a worker serves. */
export interface WorkerMethods {
  [name: string]: (arg: any) => unknown;
  /** Compiles `config` and moves its listeners to it; rejects (and keeps the old plan) on any
   * error. */
  apply(args: ApplyArgs): Promise<BoundListener[]>;
  /** A certificate obtained or renewed (ACME) for a name of a TLS listener. */
  certificate(args: { key: string; name: string; pair: CertificatePair }): void;
  stats(): WorkerStats;
  /** Graceful stop: stop accepting, drain for `graceMs`, close WebSockets. */
  shutdown(args: { graceMs: number }): Promise<void>;
  ping(): number;
  /** Makes the worker fail the way a bug would (an uncaught error): for tests. */
  fail(): void;
}

/** Methods the supervisor serves to a worker. */
export interface SupervisorMethods {
  [name: string]: (arg: any) => unknown;
  log(records: LogRecord[]): void;
  /** The key authorization of an ACME HTTP-01 token, or null. */
  challenge(token: string): string | null | Promise<string | null>;
}

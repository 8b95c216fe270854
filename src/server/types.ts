/**
 * The contract of a running bws server, used by `cli.ts`, `mod.ts` and the management API.
 *
 * @module
 */

import type { GroupSnapshot, MemberSnapshot } from "../balancer/group.ts";
import type { Config, ConfigIssue } from "../config/types.ts";

export interface ListeningAddress {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** Site names served on this listener. */
  readonly sites: readonly string[];
}

export type ReloadResult =
  | { readonly ok: true; readonly generation: number }
  | { readonly ok: false; readonly errors: readonly ConfigIssue[] };

/** Live state of one upstream member (see `ServerHandle.upstreams`). */
export type UpstreamMemberState = MemberSnapshot;

/** Live state of one upstream group of a site (see `ServerHandle.upstreams`). */
export interface UpstreamGroupState extends GroupSnapshot {
  readonly site: string;
}

export interface ServerHandle {
  /** The addresses actually bound (port 0 in config → the ephemeral port chosen). */
  readonly addresses: readonly ListeningAddress[];
  /** The management API address when enabled. */
  readonly managementAddress: { hostname: string; port: number } | null;
  readonly generation: number;
  readonly config: Config;
  /** Health, in-flight and failure state of every upstream group of the running config. */
  upstreams(): UpstreamGroupState[];
  /** Swaps in a new validated config; returns errors (and keeps the old one) if it cannot. */
  reload(config: Config): Promise<ReloadResult>;
  /** Re-reads the config file this server was started from, validates it and swaps it in. */
  reloadFromSource(): Promise<ReloadResult>;
  /** Stops accepting, drains for up to grace_period, closes WebSockets with 1001. */
  shutdown(): Promise<void>;
  /** Resolves when the server has fully stopped. */
  readonly finished: Promise<void>;
}

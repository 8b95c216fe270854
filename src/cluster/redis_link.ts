/**
 * bws's one door to Redis: a small interface over node-redis (`@redis/client`), so the rest of
 * bws and its tests never see the package, and every command has a short deadline.
 *
 * - A command asked for on a request's behalf (`urgent`) waits at most `requestTimeoutMs`
 *   (default 100 ms); background work (ACME storage, heartbeats) at most `backgroundTimeoutMs`
 *   (default 1000 ms). The deadline counts from the call and also covers a command already sent
 *   (node-redis `timeout` + `rejectInFlight`, one timer per deadline list, not per command).
 * - While the connection is down, commands fail at once (no offline queue): nothing waits for a
 *   reconnect, which node-redis keeps trying with a capped backoff.
 * - A command that times out marks the link `slow`: {@link RedisLink.usable} is false, so request
 *   paths use their local fallback without asking, until a PING answers again.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createClient } from "@redis/client";
import { errorText } from "../log/error_text.ts";
import { maskRedisUrl, parseRedisUrl } from "./redis_url.ts";

/** A reply as RESP2 gives it: strings, integers, nil and arrays. */
export type RedisReply = string | number | null | RedisReply[];

/**
 * - `connecting`: never connected yet
 * - `up`: connected and answering in time
 * - `slow`: connected, but a command timed out; probing until a PING answers
 * - `down`: the connection is lost; reconnecting
 * - `closed`: {@link RedisLink.close} was called
 */
export type LinkState = "connecting" | "up" | "slow" | "down" | "closed";

/** Raised for a command that could not be answered in time or at all (not a Redis error reply). */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** A Lua script run by its SHA1 (EVALSHA), sent in full once when the server does not know it. */
export class LuaScript {
  readonly source: string;
  readonly sha: string;
  constructor(source: string) {
    this.source = source;
    this.sha = createHash("sha1").update(source).digest("hex");
  }
}

/** Options of a command. */
export interface CommandOptions {
  /** Asked for on a request's behalf: the short deadline applies. @default false */
  readonly urgent?: boolean;
}

export interface RedisLink {
  /** The URL with its password masked, for messages. */
  readonly label: string;
  readonly state: LinkState;
  /** Up and answering in time: a request path may ask (otherwise it uses local state). */
  readonly usable: boolean;
  /** The deadline of urgent commands, in ms. */
  readonly requestTimeoutMs: number;
  /** Sends one command, e.g. `["SET", key, value, "PX", 1000]`. */
  command(args: readonly (string | number)[], opts?: CommandOptions): Promise<RedisReply>;
  /** Runs a script by SHA, sending its source once if the server does not have it. */
  eval(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    opts?: CommandOptions,
  ): Promise<RedisReply>;
  /**
   * Calls `onMessage` for each message published on `channel`, on a second connection; calls
   * `onResync` each time that connection is (re)established after the first, since messages
   * sent meanwhile are lost. Returns the unsubscribe.
   */
  subscribe(
    channel: string,
    onMessage: (message: string) => void,
    onResync?: () => void,
  ): () => void;
  /** Calls `fn` on every state change; returns the removal. */
  onState(fn: (state: LinkState, detail: string) => void): () => void;
  /** Resolves once `up` (true), or after `ms` (false). */
  waitUp(ms: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Options of {@link connectRedis}. */
export interface RedisLinkOptions {
  /** @default 100 */
  readonly requestTimeoutMs?: number;
  /** @default 1000 */
  readonly backgroundTimeoutMs?: number;
  /** Longest wait for a TCP (and TLS) connection. @default 1000 */
  readonly connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts. @default 2000 */
  readonly maxReconnectDelayMs?: number;
  /** Shown in `CLIENT LIST`. */
  readonly clientName?: string;
}

/** Milliseconds between PINGs while the link is `slow`. */
const PROBE_INTERVAL_MS = 250;

function isTimeout(err: unknown): boolean {
  const name = (err as Error)?.constructor?.name ?? "";
  return name === "TimeoutError" || name === "TimeoutReadError";
}

/** A Redis error reply (WRONGTYPE, NOSCRIPT …): the server answered, the link is fine. */
function isErrorReply(err: unknown): boolean {
  const name = (err as Error)?.constructor?.name ?? "";
  return name === "ErrorReply" || name === "SimpleError" || name === "BlobError";
}

type Client = ReturnType<typeof createClient>;

/**
 * Starts connecting to `url` (a checked `[cluster] redis_url`) and returns at once; the link
 * reconnects by itself whenever the connection is lost. See the module doc for the deadlines.
 */
export function connectRedis(url: string, opts: RedisLinkOptions = {}): RedisLink {
  return new NodeRedisLink(url, opts);
}

class NodeRedisLink implements RedisLink {
  readonly label: string;
  readonly requestTimeoutMs: number;
  readonly #backgroundTimeoutMs: number;
  readonly #client: Client;
  #subscriber: Client | null = null;
  #state: LinkState = "connecting";
  readonly #listeners = new Set<(state: LinkState, detail: string) => void>();
  #probe: ReturnType<typeof setTimeout> | undefined;
  readonly #options: Parameters<typeof createClient>[0];

  constructor(url: string, opts: RedisLinkOptions) {
    const target = parseRedisUrl(url);
    this.label = maskRedisUrl(url);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 100;
    this.#backgroundTimeoutMs = opts.backgroundTimeoutMs ?? 1000;
    const maxDelay = opts.maxReconnectDelayMs ?? 2000;
    this.#options = {
      RESP: 2,
      socket: {
        host: target.host,
        port: target.port,
        connectTimeout: opts.connectTimeoutMs ?? 1000,
        // Exponential from 50 ms, capped, with a little jitter so a fleet does not reconnect in
        // lockstep after a Redis restart.
        reconnectStrategy: (retries: number) =>
          Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
        ...(target.tls ? { tls: true as const, servername: target.host } : {}),
      },
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      database: target.db,
      ...(opts.clientName ? { name: opts.clientName } : {}),
      disableOfflineQueue: true,
      commandOptions: { timeout: this.#backgroundTimeoutMs, rejectInFlight: true },
    } as Parameters<typeof createClient>[0];
    const client = createClient(this.#options);
    this.#client = client;
    client.on("error", (err: unknown) => this.#lost(errorText(err)));
    client.on("end", () => this.#lost("connection closed"));
    client.on("ready", () => this.#set("up", ""));
    // Rejects only when the client is closed before it ever connected.
    client.connect().catch(() => {});
  }

  get state(): LinkState {
    return this.#state;
  }

  get usable(): boolean {
    return this.#state === "up";
  }

  command(args: readonly (string | number)[], opts: CommandOptions = {}): Promise<RedisReply> {
    return this.#send(args.map(String), opts);
  }

  async eval(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
    opts: CommandOptions = {},
  ): Promise<RedisReply> {
    const rest = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await this.#send(["EVALSHA", script.sha, ...rest], opts);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return await this.#send(["EVAL", script.source, ...rest], opts);
    }
  }

  async #send(args: string[], opts: CommandOptions): Promise<RedisReply> {
    if (this.#state === "closed") throw new RedisUnavailableError("Redis link is closed");
    const timeout = opts.urgent ? this.requestTimeoutMs : this.#backgroundTimeoutMs;
    try {
      return await this.#client.sendCommand(args, { timeout, rejectInFlight: true }) as RedisReply;
    } catch (err) {
      if (isErrorReply(err)) throw err;
      if (isTimeout(err) && this.#state === "up") this.#set("slow", errorText(err));
      throw new RedisUnavailableError(
        `Cannot ${args[0]} on Redis ${this.label}: ${errorText(err)}`,
        { cause: err },
      );
    }
  }

  subscribe(
    channel: string,
    onMessage: (message: string) => void,
    onResync?: () => void,
  ): () => void {
    let sub = this.#subscriber;
    if (!sub) {
      // The subscriber queues its SUBSCRIBE while offline and re-sends it on every reconnect.
      sub = this.#client.duplicate({ disableOfflineQueue: false, commandOptions: {} });
      sub.on("error", () => {});
      sub.connect().catch(() => {});
      this.#subscriber = sub;
    }
    let connections = sub.isReady ? 1 : 0;
    const onReady = () => {
      if (connections++ > 0) onResync?.();
    };
    sub.on("ready", onReady);
    const listener = (message: string) => onMessage(message);
    sub.subscribe(channel, listener).catch(() => {});
    const s = sub;
    return () => {
      s.off("ready", onReady);
      s.unsubscribe(channel, listener).catch(() => {});
    };
  }

  onState(fn: (state: LinkState, detail: string) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  waitUp(ms: number): Promise<boolean> {
    if (this.#state === "up") return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, ms);
      const off = this.onState((state) => {
        if (state !== "up") return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  close(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    this.#set("closed", "");
    clearTimeout(this.#probe);
    this.#listeners.clear();
    for (const c of [this.#client, this.#subscriber]) {
      try {
        // Also stops a client that is still trying to (re)connect.
        c?.destroy();
      } catch { /* already closed */ }
    }
    return Promise.resolve();
  }

  #lost(detail: string): void {
    if (this.#state === "closed" || this.#client.isReady) return;
    if (this.#state === "connecting" || this.#state === "down") {
      // Still trying: report the first failure once, as "down".
      if (this.#state === "connecting") this.#set("down", detail);
      return;
    }
    this.#set("down", detail);
  }

  #set(state: LinkState, detail: string): void {
    if (this.#state === state || this.#state === "closed") return;
    this.#state = state;
    if (state === "slow") this.#scheduleProbe();
    for (const fn of [...this.#listeners]) {
      try {
        fn(state, detail);
      } catch { /* a listener's bug must not break the link */ }
    }
  }

  #scheduleProbe(): void {
    clearTimeout(this.#probe);
    this.#probe = setTimeout(async () => {
      if (this.#state !== "slow") return;
      try {
        await this.#client.sendCommand(["PING"], {
          timeout: this.#backgroundTimeoutMs,
          rejectInFlight: true,
        });
        if (this.#state === "slow") this.#set("up", "");
      } catch {
        if (this.#state === "slow") this.#scheduleProbe();
      }
    }, PROBE_INTERVAL_MS);
  }
}

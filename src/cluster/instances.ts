/**
 * Fleet membership: every instance writes a heartbeat (name, version, start time, its own beat
 * interval) into one Redis hash, `<prefix>instances`, and reads the whole hash back in the same
 * round trip. `/api/status` lists the last copy read, so the API never waits on Redis.
 *
 * Times come from the Redis server's clock, so hosts whose clocks differ agree on who is late.
 * An instance is `up` while its last beat is within three of its intervals, `stale` after that;
 * one gone for an hour is removed by whichever instance notices. A graceful shutdown removes
 * its own entry at once.
 *
 * @module
 */

import { LuaScript, type RedisLink, type RedisReply } from "./redis_link.ts";

/** One instance as `/api/status` lists it (`instances`). */
export interface InstanceInfo {
  readonly name: string;
  readonly version: string;
  /** ISO time of its last heartbeat. */
  readonly lastSeen: string;
  readonly startedAt: string;
  readonly state: "up" | "stale";
  /** This process. */
  readonly self: boolean;
}

/** Entries whose last beat is older than this are removed. */
const FORGET_AFTER_MS = 3_600_000;

/**
 * KEYS[1] the hash; ARGV: field, JSON of the entry without `lastSeen`. Returns the previous
 * value of the field, the hash after the write, and the server's time in ms.
 */
const BEAT = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], '{"lastSeen":' .. string.format('%.0f', now) .. ',' .. string.sub(ARGV[2], 2))
return {old or '', redis.call('HGETALL', KEYS[1]), string.format('%.0f', now)}
`);

interface Entry {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly lastSeen: number;
  readonly startedAt: number;
  readonly intervalMs: number;
}

/** Options of {@link InstanceRegistry}. */
export interface InstanceRegistryOptions {
  /** The hash, e.g. `bws:instances`. */
  readonly key: string;
  readonly name: string;
  readonly version: string;
  /** @default 5000 */
  readonly intervalMs?: number;
  /** Told once when another live instance uses the same name. */
  readonly onNameClash?: (name: string) => void;
}

/** Heartbeats of this instance and the fleet list (see the module doc). */
export class InstanceRegistry {
  readonly #link: RedisLink;
  readonly #opts: InstanceRegistryOptions;
  readonly #intervalMs: number;
  readonly #id = crypto.randomUUID();
  readonly #startedAt = Date.now();
  #entries: Entry[] = [];
  /** Redis time minus local time at the last beat. */
  #offset = 0;
  #lastBeat = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #clashReported = false;

  constructor(link: RedisLink, opts: InstanceRegistryOptions) {
    this.#link = link;
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? 5000;
  }

  /** Beats now and then every interval, until {@link stop}. */
  start(): void {
    const loop = async () => {
      await this.beat().catch(() => {});
      if (!this.#stopped) this.#timer = setTimeout(loop, this.#intervalMs);
    };
    void loop();
  }

  /** One heartbeat; rejects when Redis cannot be reached. */
  async beat(): Promise<void> {
    const entry = JSON.stringify({
      id: this.#id,
      name: this.#opts.name,
      version: this.#opts.version,
      startedAt: this.#startedAt,
      intervalMs: this.#intervalMs,
    });
    const started = Date.now();
    const reply = await this.#link.eval(BEAT, [this.#opts.key], [this.#opts.name, entry]);
    const [old, flat, now] = reply as [string, string[], string];
    const redisNow = Number(now);
    this.#offset = redisNow - started;
    this.#lastBeat = redisNow;
    const previous = parseEntry(old);
    if (
      previous && previous.id !== this.#id && redisNow - previous.lastSeen < 3 * previous.intervalMs
    ) this.#clash();
    const entries: Entry[] = [];
    const forget: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const e = parseEntry(flat[i + 1]);
      if (e === null || redisNow - e.lastSeen > FORGET_AFTER_MS) forget.push(flat[i]);
      else entries.push(e);
    }
    this.#entries = entries;
    if (forget.length > 0) await this.#link.command(["HDEL", this.#opts.key, ...forget]);
  }

  /** The fleet as last read, this instance first; works while Redis is down (from the copy). */
  list(): InstanceInfo[] {
    const now = Date.now() + this.#offset;
    const out: InstanceInfo[] = [];
    const self: InstanceInfo = {
      name: this.#opts.name,
      version: this.#opts.version,
      lastSeen: new Date(this.#lastBeat || now).toISOString(),
      startedAt: new Date(this.#startedAt).toISOString(),
      state: "up",
      self: true,
    };
    out.push(self);
    for (const e of this.#entries) {
      if (e.id === this.#id || e.name === this.#opts.name) continue;
      out.push({
        name: e.name,
        version: e.version,
        lastSeen: new Date(e.lastSeen).toISOString(),
        startedAt: new Date(e.startedAt).toISOString(),
        state: now - e.lastSeen <= 3 * e.intervalMs ? "up" : "stale",
        self: false,
      });
    }
    return out;
  }

  /** Stops beating and removes this instance's entry (if it is still ours). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    try {
      const raw = await this.#link.command(["HGET", this.#opts.key, this.#opts.name]);
      if (parseEntry(raw)?.id === this.#id) {
        await this.#link.command(["HDEL", this.#opts.key, this.#opts.name]);
      }
    } catch { /* Redis is gone: the entry turns stale, then is forgotten */ }
  }

  #clash(): void {
    if (this.#clashReported) return;
    this.#clashReported = true;
    this.#opts.onNameClash?.(this.#opts.name);
  }
}

function parseEntry(raw: RedisReply): Entry | null {
  if (typeof raw !== "string" || raw === "") return null;
  try {
    const v = JSON.parse(raw);
    if (
      typeof v?.id !== "string" || typeof v.name !== "string" ||
      typeof v.lastSeen !== "number" || typeof v.intervalMs !== "number"
    ) return null;
    return {
      id: v.id,
      name: v.name,
      version: String(v.version ?? ""),
      lastSeen: v.lastSeen,
      startedAt: Number(v.startedAt) || v.lastSeen,
      intervalMs: v.intervalMs,
    };
  } catch {
    return null;
  }
}

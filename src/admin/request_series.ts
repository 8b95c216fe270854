/**
 * `RequestSeries`: the last minutes of traffic in a fixed-size ring of per-second slots, each
 * holding the requests of that second by status class and a histogram of their latencies. It
 * feeds `GET /api/stats` and the dashboard's charts.
 *
 * Memory is allocated once (typed arrays, ~340 KiB for the default 960 slots) and never grows.
 * `record` is on the request hot path: it reads a once-a-second clock, and the first request of
 * a new second clears that second's slot (88 numbers); otherwise it is a logarithm and two
 * increments. Reading (`stats`)
 * walks the window once and allocates only the answer.
 *
 * @module
 */

/** Slots (seconds) kept: 15 minutes plus one step of slack, so any window fits at any step. */
export const SERIES_SECONDS = 960;
/** The longest window `stats` answers for. */
export const MAX_WINDOW_SECONDS = 900;
/** The longest step (seconds per point) `stats` answers for. */
export const MAX_STEP_SECONDS = 60;

/** Status class names in answer order. */
export const STATUS_CLASS_NAMES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] as const;
export type StatusClassName = (typeof STATUS_CLASS_NAMES)[number];

/** Status class index of a status code: 0 = outside 100-599, 1..5 = 1xx..5xx. */
export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? (status / 100) | 0 : 0;
}

/** Index order in the ring (as `statusClassIndex`) of each name of `STATUS_CLASS_NAMES`. */
const NAME_TO_INDEX = [1, 2, 3, 4, 5, 0] as const;
const CLASSES = 6;

/** Upper bound of latency bucket 0, in seconds. */
const LATENCY_MIN = 1e-4;
/** Buckets per doubling of latency: a quantile is off by at most 2^(1/8) ≈ 9 %. */
const PER_OCTAVE = 4;
/**
 * Bucket 0 holds ≤ 100 µs; bucket i (1..80) holds (100 µs·2^((i-1)/4), 100 µs·2^(i/4)]; the
 * last one everything above 100 µs·2^20 ≈ 105 s.
 */
const LATENCY_BUCKETS = 20 * PER_OCTAVE + 2;

/** The latency histogram bucket of a duration in seconds (NaN and negatives go to 0). */
export function latencyBucket(seconds: number): number {
  if (!(seconds > LATENCY_MIN)) return 0;
  const i = Math.ceil(Math.log2(seconds / LATENCY_MIN) * PER_OCTAVE);
  return i < LATENCY_BUCKETS - 1 ? i : LATENCY_BUCKETS - 1;
}

/** The value reported for a quantile that falls in bucket `i`: its geometric middle. */
function bucketValue(i: number): number {
  if (i === 0) return LATENCY_MIN;
  if (i === LATENCY_BUCKETS - 1) return LATENCY_MIN * 2 ** ((i - 1) / PER_OCTAVE);
  return Math.round(LATENCY_MIN * 2 ** ((i - 0.5) / PER_OCTAVE) * 1e6) / 1e6;
}

/** The `q` quantile (0 < q ≤ 1) of `count` durations held in `hist`, or null when empty. */
function quantile(hist: Float64Array, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    cum += hist[i];
    if (cum >= rank) return bucketValue(i);
  }
  return bucketValue(hist.length - 1);
}

/** Wall-clock milliseconds that never go backwards (process start + monotonic time). */
function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The current second of {@link wallNow}, kept by a timer; -1 until first asked for. */
let clockSecond = -1;

function tick(): void {
  const now = wallNow();
  clockSecond = Math.floor(now / 1000);
  // Wakes once a second, just after the boundary; unref'd, so it never keeps the process up.
  Deno.unrefTimer(setTimeout(tick, 1001 - (now % 1000)));
}

/**
 * The current Unix second for `record`. Reading a clock costs 100-200 ns in Deno, several times
 * the rest of a `record`, so the hot path reads a variable a timer moves at each second
 * boundary (a request finishing while the event loop is late for that timer counts in the
 * second before).
 */
function currentSecond(): number {
  if (clockSecond < 0) tick();
  return clockSecond;
}

/** The JSON answer of `GET /api/stats`. */
export interface StatsDocument {
  /** Seconds covered: `points × stepSeconds`. */
  readonly windowSeconds: number;
  readonly stepSeconds: number;
  /** Unix time (s) the first point begins. */
  readonly start: number;
  /** Unix time (s) the last point ends (exclusive): the last complete step. */
  readonly end: number;
  /** Per point, oldest first: requests / stepSeconds. */
  readonly requestsPerSecond: number[];
  /** Per point: responses of each status class. */
  readonly responses: Record<StatusClassName, number[]>;
  /** Per point: latency quantiles in seconds, null where the point has no request. */
  readonly latencySeconds: { readonly p50: (number | null)[]; readonly p99: (number | null)[] };
  /** The whole window. */
  readonly totals: {
    readonly requests: number;
    readonly requestsPerSecond: number;
    readonly responses: Record<StatusClassName, number>;
    readonly latencySeconds: { readonly p50: number | null; readonly p99: number | null };
  };
}

/** Bytes of the buffer a series of `slots` seconds keeps its ring in. */
export function seriesBytes(slots: number = SERIES_SECONDS): number {
  return slots * (8 + CLASSES * 4 + LATENCY_BUCKETS * 4);
}

/** A new shared buffer for a series of `slots` seconds (one thread writes, others read). */
export function sharedSeriesBuffer(slots: number = SERIES_SECONDS): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(seriesBytes(slots));
  new Float64Array(buffer, 0, slots).fill(-1);
  return buffer;
}

/** A ring of per-second request counts by status class and latency histograms. */
export class RequestSeries {
  readonly #slots: number;
  /** Unix second each slot holds; -1 = never written. */
  readonly #second: Float64Array;
  /** slots × CLASSES request counts. */
  readonly #counts: Uint32Array;
  /** slots × LATENCY_BUCKETS latency histograms. */
  readonly #latency: Uint32Array;

  /**
   * @param slots seconds kept; at least `MAX_WINDOW_SECONDS + MAX_STEP_SECONDS`.
   * @param buffer holds the ring (a worker thread's, shared with its supervisor), made by
   *   {@link sharedSeriesBuffer} @default a buffer of its own
   */
  constructor(slots: number = SERIES_SECONDS, buffer?: ArrayBufferLike) {
    if (!Number.isInteger(slots) || slots < MAX_WINDOW_SECONDS + MAX_STEP_SECONDS) {
      throw new RangeError(
        `Cannot size a request series of "${slots}" seconds: it needs at least ${
          MAX_WINDOW_SECONDS + MAX_STEP_SECONDS
        }`,
      );
    }
    this.#slots = slots;
    if (buffer === undefined) {
      this.#second = new Float64Array(slots).fill(-1);
      this.#counts = new Uint32Array(slots * CLASSES);
      this.#latency = new Uint32Array(slots * LATENCY_BUCKETS);
    } else {
      if (buffer.byteLength < seriesBytes(slots)) {
        throw new RangeError(`Cannot keep a request series in ${buffer.byteLength} bytes`);
      }
      this.#second = new Float64Array(buffer, 0, slots);
      this.#counts = new Uint32Array(buffer, slots * 8, slots * CLASSES);
      this.#latency = new Uint32Array(buffer, slots * (8 + CLASSES * 4), slots * LATENCY_BUCKETS);
    }
  }

  /**
   * The sum of several series of the same length (the worker threads' of one process): each
   * second counts the parts that hold that second.
   */
  static sum(parts: readonly RequestSeries[]): RequestSeries {
    const slots = parts.length > 0 ? parts[0].#slots : SERIES_SECONDS;
    const out = new RequestSeries(slots);
    for (let slot = 0; slot < slots; slot++) {
      let sec = -1;
      for (const p of parts) if (p.#second[slot] > sec) sec = p.#second[slot];
      if (sec < 0) continue;
      out.#second[slot] = sec;
      for (const p of parts) {
        if (p.#second[slot] !== sec) continue;
        for (let c = 0; c < CLASSES; c++) {
          out.#counts[slot * CLASSES + c] += p.#counts[slot * CLASSES + c];
        }
        const base = slot * LATENCY_BUCKETS;
        for (let b = 0; b < LATENCY_BUCKETS; b++) out.#latency[base + b] += p.#latency[base + b];
      }
    }
    return out;
  }

  /** Bytes held by the ring; the same for the life of the instance. */
  get memoryBytes(): number {
    return this.#second.byteLength + this.#counts.byteLength + this.#latency.byteLength;
  }

  /**
   * Counts one finished request in the slot of the current second.
   *
   * @param statusClass 0 = outside 100-599, 1..5 = 1xx..5xx (see {@link statusClassIndex})
   * @param durationSeconds time from arrival to the end of the response
   * @param nowMs wall-clock milliseconds @default the current second
   */
  record(statusClass: number, durationSeconds: number, nowMs?: number): void {
    const sec = nowMs === undefined ? currentSecond() : Math.floor(nowMs / 1000);
    const slot = sec % this.#slots;
    const held = this.#second[slot];
    if (held !== sec) {
      if (held > sec) return; // a second older than the ring (only with an explicit clock)
      this.#second[slot] = sec;
      this.#counts.fill(0, slot * CLASSES, slot * CLASSES + CLASSES);
      this.#latency.fill(0, slot * LATENCY_BUCKETS, slot * LATENCY_BUCKETS + LATENCY_BUCKETS);
    }
    this.#counts[slot * CLASSES + (statusClass >= 0 && statusClass < CLASSES ? statusClass : 0)]++;
    this.#latency[slot * LATENCY_BUCKETS + latencyBucket(durationSeconds)]++;
  }

  /**
   * The last `windowSeconds` (rounded down to whole steps, at least one step) in points of
   * `stepSeconds`, aligned to multiples of the step in Unix time and ending with the last
   * complete one: the second in progress is never reported half counted.
   *
   * @throws RangeError when the window or step is not an integer in range
   */
  stats(windowSeconds: number, stepSeconds: number, nowMs: number = wallNow()): StatsDocument {
    if (
      !Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS
    ) {
      throw new RangeError(
        `Cannot report a window of "${windowSeconds}" seconds: expected an integer from 1 to ${MAX_WINDOW_SECONDS}`,
      );
    }
    if (!Number.isInteger(stepSeconds) || stepSeconds < 1 || stepSeconds > MAX_STEP_SECONDS) {
      throw new RangeError(
        `Cannot report a step of "${stepSeconds}" seconds: expected an integer from 1 to ${MAX_STEP_SECONDS}`,
      );
    }
    const nowSec = Math.floor(nowMs / 1000);
    const points = Math.max(1, Math.floor(windowSeconds / stepSeconds));
    const end = Math.floor(nowSec / stepSeconds) * stepSeconds;
    const start = end - points * stepSeconds;

    const rps: number[] = new Array(points);
    const byClass: number[][] = STATUS_CLASS_NAMES.map(() => new Array(points));
    const p50: (number | null)[] = new Array(points);
    const p99: (number | null)[] = new Array(points);
    const classTotals = new Float64Array(CLASSES);
    const pointHist = new Float64Array(LATENCY_BUCKETS);
    const windowHist = new Float64Array(LATENCY_BUCKETS);
    const pointClasses = new Float64Array(CLASSES);
    let total = 0;

    for (let p = 0; p < points; p++) {
      pointHist.fill(0);
      pointClasses.fill(0);
      const from = start + p * stepSeconds;
      for (let s = from; s < from + stepSeconds; s++) {
        const slot = s % this.#slots;
        if (this.#second[slot] !== s) continue;
        for (let c = 0; c < CLASSES; c++) pointClasses[c] += this.#counts[slot * CLASSES + c];
        const base = slot * LATENCY_BUCKETS;
        for (let b = 0; b < LATENCY_BUCKETS; b++) pointHist[b] += this.#latency[base + b];
      }
      let n = 0;
      for (let c = 0; c < CLASSES; c++) n += pointClasses[c];
      for (let k = 0; k < STATUS_CLASS_NAMES.length; k++) {
        byClass[k][p] = pointClasses[NAME_TO_INDEX[k]];
      }
      for (let c = 0; c < CLASSES; c++) classTotals[c] += pointClasses[c];
      for (let b = 0; b < LATENCY_BUCKETS; b++) windowHist[b] += pointHist[b];
      rps[p] = n / stepSeconds;
      p50[p] = quantile(pointHist, n, 0.5);
      p99[p] = quantile(pointHist, n, 0.99);
      total += n;
    }

    const responses = {} as Record<StatusClassName, number[]>;
    const responseTotals = {} as Record<StatusClassName, number>;
    STATUS_CLASS_NAMES.forEach((name, k) => {
      responses[name] = byClass[k];
      responseTotals[name] = classTotals[NAME_TO_INDEX[k]];
    });
    const seconds = points * stepSeconds;
    return {
      windowSeconds: seconds,
      stepSeconds,
      start,
      end,
      requestsPerSecond: rps,
      responses,
      latencySeconds: { p50, p99 },
      totals: {
        requests: total,
        requestsPerSecond: Math.round((total / seconds) * 1000) / 1000,
        responses: responseTotals,
        latencySeconds: {
          p50: quantile(windowHist, total, 0.5),
          p99: quantile(windowHist, total, 0.99),
        },
      },
    };
  }
}

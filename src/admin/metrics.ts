/**
 * `Metrics`: the in-process counters behind `GET /metrics`. Recording is on the request hot
 * path, so it costs two Map lookups and a few array increments; all label strings are built
 * once, when a site or route is first seen, and every string is assembled only in `render`.
 *
 * Each request is also counted in a {@link RequestSeries}, the last 15 minutes per second that
 * `GET /api/stats` and the dashboard show; and the outcome of the last reload is kept.
 *
 * One instance lives for the whole process (it survives reloads).
 *
 * @module
 */

import type { ConfigIssue } from "../config/types.ts";
import {
  issuesJson,
  type PoolSnapshot,
  type ReloadRecord,
  type UpstreamSnapshot,
} from "./types.ts";
import { formatValue, header, labels } from "./prom_text.ts";
import { RequestSeries, type StatsDocument, statusClassIndex } from "./request_series.ts";
import type { EdgeRule } from "../edge/types.ts";
import { RefusalCounter } from "./refusal_counter.ts";

/** Latency histogram upper bounds in seconds (`+Inf` is implicit). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Status classes by index: 0 = anything outside 100-599, then 1xx … 5xx. */
const CLASS_NAMES = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;

class RouteStats {
  /** Requests by status class index. */
  readonly byClass = new Float64Array(CLASS_NAMES.length);
  /** `site="…",route="…"` ready for rendering. */
  constructor(readonly labelPrefix: string) {}
}

class SiteStats {
  readonly routes = new Map<string, RouteStats>();
  /** Non-cumulative counts per bucket; the last slot is `+Inf`. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  bytesIn = 0;
  bytesOut = 0;
  webSocketsOpen = 0;
  webSocketsTotal = 0;
  /** `site="…"` ready for rendering. */
  constructor(readonly name: string, readonly label: string) {}

  route(route: string): RouteStats {
    let r = this.routes.get(route);
    if (r === undefined) {
      r = new RouteStats(labels([["site", this.name], ["route", route]]).slice(1, -1));
      this.routes.set(route, r);
    }
    return r;
  }
}

/** Request, WebSocket, reload and upstream metrics rendered as Prometheus text 0.0.4. */
export class Metrics {
  readonly #sites = new Map<string, SiteStats>();
  readonly #startedAt = performance.now();
  #generation = 0;
  #reloadsOk = 0;
  #reloadsFailed = 0;
  #lastReload: ReloadRecord | null = null;
  readonly #series: RequestSeries;
  readonly #refusals = new RefusalCounter();

  /** @param series where requests per second are counted @default a series of its own */
  constructor(series: RequestSeries = new RequestSeries()) {
    this.#series = series;
  }

  /** Makes a site appear (with zero counters) before its first request. */
  ensureSite(site: string): void {
    this.#site(site);
  }

  /**
   * Counts one finished request.
   *
   * @param route the matched route path, or "" for static files / no route
   * @param durationSeconds time from arrival to the end of the response
   */
  recordRequest(
    site: string,
    route: string,
    status: number,
    durationSeconds: number,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const s = this.#site(site);
    if (!(durationSeconds >= 0)) durationSeconds = 0; // NaN/negative would poison the sum
    const cls = statusClassIndex(status);
    s.route(route).byClass[cls]++;
    this.#series.record(cls, durationSeconds);
    let i = 0;
    const n = LATENCY_BUCKETS.length;
    while (i < n && durationSeconds > LATENCY_BUCKETS[i]) i++;
    s.buckets[i]++;
    s.sum += durationSeconds;
    s.count++;
    s.bytesIn += bytesIn > 0 ? bytesIn : 0;
    s.bytesOut += bytesOut > 0 ? bytesOut : 0;
  }

  webSocketOpened(site: string): void {
    const s = this.#site(site);
    s.webSocketsOpen++;
    s.webSocketsTotal++;
  }

  webSocketClosed(site: string): void {
    const s = this.#site(site);
    if (s.webSocketsOpen > 0) s.webSocketsOpen--;
  }

  /** Counts a request an edge rule refused (`bws_refused_total{site,rule}`). */
  recordRefusal(site: string, rule: EdgeRule): void {
    this.#refusals.record(site, rule);
  }

  setGeneration(n: number): void {
    this.#generation = n;
  }

  /** Counts a successful reload; call it after {@link setGeneration} with the new generation. */
  reloadSucceeded(): void {
    this.#reloadsOk++;
    this.#lastReload = {
      time: new Date().toISOString(),
      ok: true,
      generation: this.#generation,
      errors: [],
    };
  }

  /** Counts a failed reload and keeps its errors for {@link lastReload}. */
  reloadFailed(errors: readonly ConfigIssue[] = []): void {
    this.#reloadsFailed++;
    this.#lastReload = {
      time: new Date().toISOString(),
      ok: false,
      generation: this.#generation,
      errors: issuesJson(errors),
    };
  }

  /** The last reload attempt, or null when there was none since start. */
  lastReload(): ReloadRecord | null {
    return this.#lastReload;
  }

  /**
   * Requests per second, responses by status class and latency quantiles over the last
   * `windowSeconds` (see {@link RequestSeries.stats}).
   *
   * @throws RangeError when the window or step is out of range
   */
  stats(windowSeconds: number, stepSeconds: number): StatsDocument {
    return this.#series.stats(windowSeconds, stepSeconds);
  }

  #site(site: string): SiteStats {
    let s = this.#sites.get(site);
    if (s === undefined) {
      s = new SiteStats(site, labels([["site", site]]).slice(1, -1));
      this.#sites.set(site, s);
    }
    return s;
  }

  /** The whole exposition, `upstreams` included, ending with a newline. */
  render(
    upstreams: readonly UpstreamSnapshot[] = [],
    pools: readonly PoolSnapshot[] = [],
  ): string {
    const out: string[] = [];
    const sites = [...this.#sites.values()];

    out.push(
      header("bws_requests_total", "counter", "Requests handled, by site, route and status class."),
    );
    for (const s of sites) {
      for (const r of s.routes.values()) {
        for (let c = 0; c < CLASS_NAMES.length; c++) {
          if (r.byClass[c] === 0 && c !== 2) continue;
          out.push(
            `bws_requests_total{${r.labelPrefix},code="${CLASS_NAMES[c]}"} ${r.byClass[c]}\n`,
          );
        }
      }
    }

    out.push(header("bws_request_duration_seconds", "histogram", "Request latency by site."));
    for (const s of sites) {
      let cum = 0;
      for (let i = 0; i < s.buckets.length; i++) {
        cum += s.buckets[i];
        const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : "+Inf";
        out.push(`bws_request_duration_seconds_bucket{${s.label},le="${le}"} ${cum}\n`);
      }
      out.push(`bws_request_duration_seconds_sum{${s.label}} ${formatValue(s.sum)}\n`);
      out.push(`bws_request_duration_seconds_count{${s.label}} ${s.count}\n`);
    }

    this.#perSite(
      out,
      sites,
      "bws_bytes_received_total",
      "counter",
      "Request body bytes received.",
      (s) => s.bytesIn,
    );
    this.#perSite(
      out,
      sites,
      "bws_bytes_sent_total",
      "counter",
      "Response body bytes sent.",
      (s) => s.bytesOut,
    );
    this.#perSite(
      out,
      sites,
      "bws_websockets_open",
      "gauge",
      "WebSocket sessions currently relayed.",
      (s) => s.webSocketsOpen,
    );
    this.#perSite(
      out,
      sites,
      "bws_websockets_total",
      "counter",
      "WebSocket sessions opened.",
      (s) => s.webSocketsTotal,
    );

    out.push(header("bws_config_generation", "gauge", "Generation of the running configuration."));
    out.push(`bws_config_generation ${this.#generation}\n`);
    out.push(header("bws_config_reloads_total", "counter", "Configuration reloads by result."));
    out.push(`bws_config_reloads_total{result="success"} ${this.#reloadsOk}\n`);
    out.push(`bws_config_reloads_total{result="failure"} ${this.#reloadsFailed}\n`);
    this.#refusals.render(out);

    const ups = upstreams.map((u) => ({
      u,
      l: labels([["site", u.site], ["group", u.group], ["url", u.url]]),
    }));
    const perUpstream = (
      name: string,
      type: "counter" | "gauge",
      help: string,
      value: (u: UpstreamSnapshot) => number,
    ) => {
      out.push(header(name, type, help));
      for (const { u, l } of ups) out.push(`${name}${l} ${formatValue(value(u))}\n`);
    };
    perUpstream(
      "bws_upstream_up",
      "gauge",
      "1 when the upstream is considered healthy.",
      (u) => u.live ? 1 : 0,
    );
    perUpstream(
      "bws_upstream_in_flight",
      "gauge",
      "Requests in flight to the upstream.",
      (u) => u.inFlight,
    );
    perUpstream(
      "bws_upstream_websockets_open",
      "gauge",
      "WebSocket sessions open to the upstream.",
      (u) => u.webSockets,
    );
    perUpstream(
      "bws_upstream_requests_total",
      "counter",
      "Requests sent to the upstream.",
      (u) => u.requests,
    );
    perUpstream(
      "bws_upstream_failures_total",
      "counter",
      "Failed attempts against the upstream.",
      (u) => u.fails,
    );

    out.push(
      header(
        "bws_upstream_connections",
        "gauge",
        "Keep-alive sockets to each upstream origin: idle in the pool, or busy with a request.",
      ),
    );
    for (const p of pools) {
      for (const state of ["idle", "busy"] as const) {
        out.push(
          `bws_upstream_connections${labels([["origin", p.origin], ["state", state]])} ${
            p[state]
          }\n`,
        );
      }
    }

    out.push(header("bws_uptime_seconds", "gauge", "Seconds since the process started serving."));
    out.push(`bws_uptime_seconds ${((performance.now() - this.#startedAt) / 1000).toFixed(3)}\n`);
    return out.join("");
  }

  #perSite(
    out: string[],
    sites: readonly SiteStats[],
    name: string,
    type: "counter" | "gauge",
    help: string,
    value: (s: SiteStats) => number,
  ): void {
    out.push(header(name, type, help));
    for (const s of sites) out.push(`${name}{${s.label}} ${value(s)}\n`);
  }
}

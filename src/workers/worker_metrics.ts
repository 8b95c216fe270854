/**
 * The supervisor's share of `/metrics` and the log: which families it renders itself (the
 * workers' copies of them are dropped when their expositions are added up), the per-worker
 * families, and writing the log records the workers relay.
 *
 * @module
 */

import { header, labels } from "../admin/prom_text.ts";
import type { Logger } from "../log/types.ts";
import type { LogRecord } from "./protocol.ts";
import type { WorkerInfo } from "./worker_pool.ts";

/** Families the supervisor renders itself; the workers' copies of them are ignored. */
export function supervisorFamily(name: string): boolean {
  return name === "bws_config_generation" || name === "bws_config_reloads_total" ||
    name === "bws_uptime_seconds" ||
    (name.startsWith("bws_upstream_") && name !== "bws_upstream_connections");
}

/** The per-worker families of `/metrics`. */
export function workerFamilies(workers: readonly WorkerInfo[]): string {
  const out: string[] = [];
  const family = (
    name: string,
    type: "counter" | "gauge",
    help: string,
    value: (w: WorkerInfo) => number | null,
  ) => {
    out.push(header(name, type, help));
    for (const w of workers) {
      const v = value(w);
      if (v !== null) out.push(`${name}${labels([["worker", String(w.id)]])} ${v}\n`);
    }
  };
  family(
    "bws_worker_up",
    "gauge",
    "1 while the worker thread runs and answers.",
    (w) => w.state === "running" && w.inFlight !== null ? 1 : 0,
  );
  family(
    "bws_worker_requests_total",
    "counter",
    "Requests answered by each worker thread.",
    (w) => w.requests,
  );
  family(
    "bws_worker_connections",
    "gauge",
    "Client connections open on each worker thread.",
    (w) => w.connections,
  );
  family(
    "bws_worker_in_flight",
    "gauge",
    "Requests in progress on each worker thread.",
    (w) => w.inFlight,
  );
  family(
    "bws_worker_restarts_total",
    "counter",
    "Times each worker thread was restarted after it died.",
    (w) => w.restarts,
  );
  return out.join("");
}

/** Writes the records a worker relayed with the supervisor's logger. */
export function writeRecords(logger: Logger, records: readonly LogRecord[]): void {
  for (const r of records) {
    if (r.kind === "access") logger.access(r.entry);
    else if (r.kind === "access_lines") logger.accessLines?.(r.text);
    else logger[r.level](r.msg, r.fields);
  }
}

/**
 * The management API and the metrics registry.
 *
 * @module
 */

export {
  type AdminServer,
  createAdminApp,
  METRICS_CONTENT_TYPE,
  serveAdmin,
  type ServeAdminOptions,
} from "./app.ts";
export type {
  AdminRuntime,
  CertificateInfo,
  ReloadRecord,
  StatsDocument,
  UpstreamSnapshot,
} from "./types.ts";
export { RequestSeries } from "./request_series.ts";
export { LATENCY_BUCKETS, Metrics } from "./metrics.ts";
export { isLoopbackHost } from "./loopback.ts";

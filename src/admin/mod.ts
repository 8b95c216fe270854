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
export type { AdminRuntime, UpstreamSnapshot } from "./types.ts";
export { LATENCY_BUCKETS, Metrics } from "./metrics.ts";
export { isLoopbackHost } from "./loopback.ts";

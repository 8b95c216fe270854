import { describe, it } from "node:test";
import { expect } from "expect";
import { parseProm } from "../../tests/helpers/prom_parse.ts";
import { countersOnly, mergeExpositions } from "./metrics_merge.ts";

const SUPERVISOR = `# HELP bws_requests_total Requests.
# TYPE bws_requests_total counter
# HELP bws_config_generation Generation.
# TYPE bws_config_generation gauge
bws_config_generation 3
# HELP bws_upstream_up Up.
# TYPE bws_upstream_up gauge
bws_upstream_up{site="s",group="g",url="http://a"} 1
`;

const worker = (n: number, wsOpen: number) =>
  `# HELP bws_requests_total Requests.
# TYPE bws_requests_total counter
bws_requests_total{site="s",route="/",code="2xx"} ${n}
# HELP bws_request_duration_seconds Latency.
# TYPE bws_request_duration_seconds histogram
bws_request_duration_seconds_bucket{site="s",le="0.1"} ${n}
bws_request_duration_seconds_bucket{site="s",le="+Inf"} ${n}
bws_request_duration_seconds_sum{site="s"} ${n / 10}
bws_request_duration_seconds_count{site="s"} ${n}
# HELP bws_websockets_open Open.
# TYPE bws_websockets_open gauge
bws_websockets_open{site="s"} ${wsOpen}
# HELP bws_config_generation Generation.
# TYPE bws_config_generation gauge
bws_config_generation 2
# HELP bws_upstream_up Up.
# TYPE bws_upstream_up gauge
bws_upstream_up{site="s",group="g",url="http://a"} 0
`;

describe("mergeExpositions", () => {
  it("adds the workers' samples up and keeps the supervisor's own families", () => {
    const merged = mergeExpositions(
      SUPERVISOR,
      [worker(3, 1), worker(4, 2)],
      (f) => f === "bws_config_generation" || f.startsWith("bws_upstream_"),
    );
    const m = parseProm(merged); // throws on anything a scraper would reject
    expect(m.value("bws_requests_total", { site: "s", route: "/", code: "2xx" })).toBe(7);
    expect(m.value("bws_request_duration_seconds_count", { site: "s" })).toBe(7);
    expect(m.value("bws_request_duration_seconds_bucket", { site: "s", le: "+Inf" })).toBe(7);
    expect(m.value("bws_request_duration_seconds_sum", { site: "s" })).toBeCloseTo(0.7);
    expect(m.value("bws_websockets_open", { site: "s" })).toBe(3);
    expect(m.value("bws_config_generation")).toBe(3);
    expect(m.value("bws_upstream_up", { site: "s", group: "g", url: "http://a" })).toBe(1);
  });

  it("a dead worker's counters keep counting, its gauges do not", () => {
    const merged = mergeExpositions(
      SUPERVISOR,
      [worker(4, 2), countersOnly(worker(10, 5))],
      () => false,
    );
    const m = parseProm(merged);
    expect(m.value("bws_requests_total", { site: "s", route: "/", code: "2xx" })).toBe(14);
    expect(m.value("bws_request_duration_seconds_count", { site: "s" })).toBe(14);
    expect(m.value("bws_websockets_open", { site: "s" })).toBe(2);
  });
});

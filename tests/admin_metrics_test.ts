import { describe, it } from "node:test";
import { expect } from "expect";
import { Metrics } from "../src/admin/metrics.ts";
import type { UpstreamSnapshot } from "../src/admin/types.ts";
import { parseProm } from "./helpers/prom_parse.ts";

const upstreams: UpstreamSnapshot[] = [
  {
    site: "main",
    group: "api",
    url: "http://127.0.0.1:3001",
    live: true,
    inFlight: 2,
    webSockets: 1,
    requests: 40,
    fails: 0,
  },
  {
    site: "main",
    group: "api",
    url: "http://127.0.0.1:3002",
    live: false,
    inFlight: 0,
    webSockets: 0,
    requests: 7,
    fails: 5,
  },
];

describe("Metrics.render", () => {
  it("parses as Prometheus text and counts what was recorded", () => {
    const m = new Metrics();
    m.recordRequest("main", "/api", 200, 0.003, 10, 100);
    m.recordRequest("main", "/api", 204, 0.02, 0, 0);
    m.recordRequest("main", "/api", 200, 0.7, 5, 1000);
    m.recordRequest("main", "/api", 502, 12, 0, 30);
    m.recordRequest("main", "", 404, 0.001, 0, 9);
    m.recordRequest("blog", "", 200, 0.05, 0, 1);
    m.webSocketOpened("main");
    m.webSocketOpened("main");
    m.webSocketClosed("main");
    m.setGeneration(3);
    m.reloadSucceeded();
    m.reloadSucceeded();
    m.reloadFailed();
    const p = parseProm(m.render(upstreams));

    expect(p.value("bws_requests_total", { site: "main", route: "/api", code: "2xx" })).toBe(3);
    expect(p.value("bws_requests_total", { site: "main", route: "/api", code: "5xx" })).toBe(1);
    expect(p.value("bws_requests_total", { site: "main", route: "", code: "4xx" })).toBe(1);
    expect(p.value("bws_requests_total", { site: "blog", route: "", code: "2xx" })).toBe(1);

    const buckets = p.samples("bws_request_duration_seconds_bucket").filter((s) =>
      s.labels.site === "main"
    );
    expect(buckets.map((b) => b.labels.le)).toEqual([
      "0.005",
      "0.01",
      "0.025",
      "0.05",
      "0.1",
      "0.25",
      "0.5",
      "1",
      "2.5",
      "5",
      "10",
      "+Inf",
    ]);
    // 0.003 and 0.001 ≤ .005; 0.02 ≤ .025; 0.7 ≤ 1; 12 only in +Inf.
    expect(buckets.map((b) => b.value)).toEqual([2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 5]);
    expect(p.value("bws_request_duration_seconds_count", { site: "main" })).toBe(5);
    expect(p.value("bws_request_duration_seconds_sum", { site: "main" })).toBeCloseTo(12.724, 9);

    expect(p.value("bws_bytes_received_total", { site: "main" })).toBe(15);
    expect(p.value("bws_bytes_sent_total", { site: "main" })).toBe(1139);
    expect(p.value("bws_websockets_open", { site: "main" })).toBe(1);
    expect(p.value("bws_config_generation")).toBe(3);
    expect(p.value("bws_config_reloads_total", { result: "success" })).toBe(2);
    expect(p.value("bws_config_reloads_total", { result: "failure" })).toBe(1);

    const u2 = { site: "main", group: "api", url: "http://127.0.0.1:3002" };
    expect(p.value("bws_upstream_up", u2)).toBe(0);
    expect(p.value("bws_upstream_up", { ...u2, url: "http://127.0.0.1:3001" })).toBe(1);
    expect(p.value("bws_upstream_in_flight", { ...u2, url: "http://127.0.0.1:3001" })).toBe(2);
    expect(p.value("bws_upstream_requests_total", u2)).toBe(7);
    expect(p.value("bws_upstream_failures_total", u2)).toBe(5);
    expect(p.value("bws_uptime_seconds")).toBeGreaterThanOrEqual(0);

    for (const f of p.families.values()) {
      expect(f.help).not.toBe("");
      expect(f.type).not.toBe("");
    }
  });

  it("escapes label values so hostile site/route names still parse", () => {
    const m = new Metrics();
    const site = 'we"ird\\site\nx';
    m.recordRequest(site, '/a"b', 200, 0.1, 0, 0);
    const p = parseProm(m.render([{ ...upstreams[0], site, url: "http://h/\\" }]));
    expect(p.value("bws_requests_total", { site, route: '/a"b', code: "2xx" })).toBe(1);
    expect(p.value("bws_upstream_up", { site, group: "api", url: "http://h/\\" })).toBe(1);
  });

  it("ignores NaN durations and negative byte counts instead of poisoning totals", () => {
    const m = new Metrics();
    m.recordRequest("s", "", 200, NaN, -1, -5);
    const p = parseProm(m.render());
    expect(p.value("bws_request_duration_seconds_sum", { site: "s" })).toBe(0);
    expect(p.value("bws_bytes_sent_total", { site: "s" })).toBe(0);
  });

  it("records a million requests in well under a second", () => {
    const m = new Metrics();
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) m.recordRequest("main", "/api", 200, 0.004, 0, 512);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000);
    expect(
      parseProm(m.render()).value("bws_requests_total", {
        site: "main",
        route: "/api",
        code: "2xx",
      }),
    ).toBe(1_000_000);
  });
});

describe("Metrics.lastReload", () => {
  it("keeps the outcome of the last reload: time, result, generation and errors", () => {
    const m = new Metrics();
    expect(m.lastReload()).toBeNull();
    m.setGeneration(2);
    m.reloadSucceeded();
    const ok = m.lastReload()!;
    expect(ok).toMatchObject({ ok: true, generation: 2, errors: [] });
    expect(Math.abs(Date.parse(ok.time) - Date.now())).toBeLessThan(2000);
    m.reloadFailed([{ path: "sites[0].port", message: "Cannot use port 99999", line: 4 }]);
    expect(m.lastReload()).toMatchObject({
      ok: false,
      generation: 2,
      errors: [{ path: "sites[0].port", message: "Cannot use port 99999", line: 4, column: null }],
    });
    const p = parseProm(m.render());
    expect(p.value("bws_config_reloads_total", { result: "failure" })).toBe(1);
  });
});

describe("parseProm (test helper) rejects malformed text", () => {
  const bad: [string, string][] = [
    ["no trailing newline", "a 1"],
    ["bad value", "# TYPE a gauge\na one\n"],
    ["unquoted label", "# TYPE a gauge\na{x=1} 1\n"],
    ["bad escape", '# TYPE a gauge\na{x="\\t"} 1\n'],
    ["duplicate series", "# TYPE a gauge\na 1\na 2\n"],
    ["split family", '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="y"} 2\n'],
    ["TYPE after samples", "a 1\n# TYPE a gauge\n"],
    [
      "non-cumulative histogram",
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
    [
      "+Inf != count",
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
    ],
    ["negative counter", "# TYPE c counter\nc -1\n"],
  ];
  for (const [what, text] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => parseProm(text)).toThrow();
    });
  }
});

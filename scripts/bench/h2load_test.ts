import { describe, it } from "node:test";
import { expect } from "expect";
import { parseH2load } from "./h2load.ts";

/** The tail of an h2load 1.52 report, as printed. */
const REPORT = `
finished in 2.00s, 9859.00 req/s, 375.77KB/s
requests: 19718 total, 19750 started, 19718 done, 19718 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 19718 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 751.53KB (769570) total, 173.64KB (177810) headers (space savings 90.89%), 231.07KB (236616) data
                     min         max         mean         sd        +/- sd
time for request:      932us     40.11ms      3.21ms      2.50ms    90.65%
`;

describe("parseH2load", () => {
  it("reads the requests done and the rate", () => {
    const r = parseH2load(REPORT);
    expect(r.requests).toBe(19718);
    expect(r.requestsPerSecond).toBe(9859);
    expect(r.bad).toBe(0);
  });

  it("counts answers other than 2xx and failed, errored or timed out requests as bad", () => {
    const r = parseH2load(
      REPORT.replace(
        "19718 succeeded, 0 failed, 0 errored, 0 timeout",
        "19700 succeeded, 3 failed, 2 errored, 1 timeout",
      )
        .replace("19718 2xx, 0 3xx, 0 4xx, 0 5xx", "19700 2xx, 0 3xx, 10 4xx, 8 5xx"),
    );
    expect(r.bad).toBe(3 + 2 + 1 + 10 + 8);
  });

  it("throws on a report it cannot read", () => {
    expect(() => parseH2load("h2load: invalid option")).toThrow(/Cannot parse h2load output/);
  });
});

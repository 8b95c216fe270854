import { describe, it } from "node:test";
import { expect } from "expect";
import { measureInTurns, slotSeconds } from "./measure.ts";
import { freePort, startService, waitReady } from "./process.ts";
import { clockTicks } from "./proc_stats.ts";

describe("slotSeconds", () => {
  it("splits the duration over the rounds, never below wrk's one second", () => {
    expect(slotSeconds(10, 5)).toBe(2);
    expect(slotSeconds(10, 3)).toBe(3);
    expect(slotSeconds(2, 5)).toBe(1);
  });
});

describe("measureInTurns", () => {
  it("sums a live server's CPU and requests over its rounds and reports a dead one", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bws-measure-test-" });
    const port = freePort();
    const service = await startService({
      name: "backend",
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        "--no-config",
        new URL("./backend.ts", import.meta.url).pathname,
        String(port),
      ],
      logDir: tmp,
    });
    try {
      const url = `http://127.0.0.1:${port}/`;
      await waitReady(service, url);
      const seen: number[] = [];
      const { rows, failures } = await measureInTurns(
        [
          { name: "live", service, url, peakRss: true },
          { name: "dead", service, url: `http://127.0.0.1:${freePort()}/` },
        ],
        {
          connections: 4,
          duration: 2,
          rounds: 2,
          warmup: 1,
          wrk: "wrk",
          ticksPerSecond: await clockTicks(),
        },
        (round) => seen.push(round),
      );
      expect(seen).toEqual([1, 2]);
      expect(rows.map((r) => r.name)).toEqual(["live"]);
      const live = rows[0];
      expect(live.requests).toBeGreaterThan(100);
      expect(live.roundCpu).toHaveLength(2);
      expect(live.cpuMicrosPerRequest).toBeGreaterThan(0);
      expect(Number.isFinite(live.cpuMicrosPerRequest)).toBe(true);
      expect(live.peakRss).toBeGreaterThan(1024 * 1024);
      expect(failures.get("dead")).toMatch(/Cannot parse wrk output/);
    } finally {
      await service.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  });
});

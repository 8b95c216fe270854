import { describe, it } from "node:test";
import { expect } from "expect";
import { runLarge } from "./large.ts";
import { freePort, type Service, startService, waitReady } from "./process.ts";

const here = new URL(".", import.meta.url).pathname;

describe("runLarge through the minimal proxy", () => {
  it("moves the bytes both ways, verified at the far end, and samples RSS", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bws-bench-test-" });
    const started: Service[] = [];
    try {
      const backendPort = freePort();
      const proxyPort = freePort();
      const backend = await startService({
        name: "backend",
        command: Deno.execPath(),
        args: ["run", "-A", `${here}backend.ts`, String(backendPort)],
        logDir: tmp,
      });
      started.push(backend);
      const proxy = await startService({
        name: "proxy",
        command: Deno.execPath(),
        args: [
          "run",
          "-A",
          `${here}minimal_proxy.ts`,
          String(proxyPort),
          `http://127.0.0.1:${backendPort}`,
        ],
        logDir: tmp,
      });
      started.push(proxy);
      await waitReady(backend, `http://127.0.0.1:${backendPort}/`);
      await waitReady(proxy, `http://127.0.0.1:${proxyPort}/`);
      const bytes = 8 * 1024 * 1024 + 5;
      const r = await runLarge({
        base: `http://127.0.0.1:${proxyPort}`,
        host: "bench.test",
        pid: proxy.pid,
        bytes,
      });
      expect(r.upload).toMatchObject({ ok: true, bytes });
      expect(r.download).toMatchObject({ ok: true, bytes });
      expect(r.baselineRss).toBeGreaterThan(0);
      expect(r.uploadPeakRss).toBeGreaterThanOrEqual(r.baselineRss);
      expect(r.downloadPeakRss).toBeGreaterThan(0);

      await proxy.stop();
      expect(proxy.exited()).toBe(true);
      const failed = await runLarge({
        base: `http://127.0.0.1:${proxyPort}`,
        host: "bench.test",
        pid: proxy.pid,
        bytes: 1024,
      });
      expect(failed.upload.ok).toBe(false);
      expect(failed.download.ok).toBe(false);
    } finally {
      for (const s of started) await s.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  });
});

// A plain Deno.test (sanitizers ON) proving start()/stop() leak no timers, ops or resources.
import { expect } from "expect";
import { UpstreamGroup } from "../src/balancer/group.ts";
import { HostRegistry } from "../src/health/registry.ts";
import { startBackend } from "./helpers/backends.ts";
import { entries, PASSIVE } from "./helpers/upstream_group.ts";
import { waitFor } from "./helpers/wait.ts";

Deno.test({
  name: "UpstreamGroup.stop() leaves no timers, ops or resources behind",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const backend = startBackend("a");
    const slow = startBackend("slow", { holdPath: "/slow" });
    try {
      const g = new UpstreamGroup({
        site: "main",
        name: "app",
        upstreams: entries("app", [backend.url, slow.url + "/slow"]),
        method: "round_robin",
        healthCheck: {
          enabled: true,
          path: "health",
          intervalMs: 50,
          timeoutMs: 5000,
          retries: 2,
          rise: 2,
          expectStatus: "2xx",
        },
        passiveHealth: PASSIVE,
        registry: new HostRegistry(),
      });
      g.start();
      await waitFor("2 checks of backend", 2000, () => backend.healthHits >= 2);
      // The check against "/slow" is still in flight: stop() must abort it too.
      await g.stop();
      expect(g.members[0].state.activeUp).toBe(true);
    } finally {
      await backend.stop();
      await slow.stop();
    }
  },
});

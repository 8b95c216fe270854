/**
 * The management API's listener as the server keeps it: started with the config, restarted
 * when a reload changes `[management]`, stopped at shutdown.
 *
 * @module
 */

import type { AdminServer } from "../admin/app.ts";
import type { AdminRuntime } from "../admin/types.ts";
import type { ManagementConfig } from "../config/types.ts";
import { listenError } from "./listener_set.ts";

export class ManagementApi {
  #server: AdminServer | null = null;

  /** The bound address while it runs. */
  get address(): { hostname: string; port: number } | null {
    return this.#server ? this.#server.addr : null;
  }

  /** Stops the running listener, then serves `cfg` when it is enabled. */
  async restart(cfg: ManagementConfig, runtime: AdminRuntime): Promise<void> {
    if (this.#server) {
      await this.#server.shutdown();
      this.#server = null;
    }
    if (!cfg.enabled) return;
    // Loaded on first use: Hono and the API cost start-up time that configs without it skip.
    const { serveAdmin } = await import("../admin/app.ts");
    try {
      this.#server = serveAdmin(cfg, runtime);
    } catch (err) {
      throw listenError(cfg.host, cfg.port, err);
    }
  }

  /** Stops the listener at shutdown (its address stays readable). */
  async close(): Promise<void> {
    if (this.#server) await this.#server.shutdown();
  }
}

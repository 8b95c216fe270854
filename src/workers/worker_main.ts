/**
 * The module each worker thread starts with (`new Worker(url, { type: "module" })`): it waits
 * for its {@linkcode WorkerInit}, serves the supervisor's calls with a {@linkcode WorkerServer},
 * and says it is ready. `scripts/compile.ts` embeds it in the binary.
 *
 * @module
 */

import type { SupervisorMethods, WorkerInit, WorkerMethods } from "./protocol.ts";
import { type Endpoint, Rpc } from "./rpc.ts";
import { WorkerServer } from "./worker_server.ts";

/** How long an ACME challenge lookup may wait for the supervisor. */
const CHALLENGE_TIMEOUT_MS = 5000;

const scope = self as unknown as Endpoint;

const onInit = (e: MessageEvent) => {
  const init = e.data as WorkerInit;
  if (init?.type !== "init") return;
  scope.removeEventListener("message", onInit);
  let rpc: Rpc<WorkerMethods, SupervisorMethods> | null = null;
  const server = new WorkerServer(init, {
    log: (records) => rpc?.notify("log", records),
    challenge: (token) =>
      rpc ? rpc.call("challenge", token, CHALLENGE_TIMEOUT_MS) : Promise.resolve(null),
  });
  rpc = new Rpc<WorkerMethods, SupervisorMethods>(scope, server.methods());
  scope.postMessage({ type: "ready" });
};

scope.addEventListener("message", onInit);

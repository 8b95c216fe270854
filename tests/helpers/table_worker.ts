/**
 * A worker thread for the shared-memory tests: hammers a shared bucket table or a host slot
 * from another thread, then reports what it saw.
 *
 * @module
 */

import { HostCells, HostTable, type HostTableShape } from "../../src/health/host_cells.ts";
import { HostState } from "../../src/health/host_state.ts";
import { SharedBucketStore } from "../../src/workers/shared_bucket_store.ts";
import { SharedKeyTable } from "../../src/workers/shared_key_table.ts";

/** What the test asks the thread to do; it sets `started[0]` to 1 as it begins. */
export type TableJob =
  & { started?: Int32Array }
  & (
    | { kind: "buckets"; buffer: SharedArrayBuffer; takes: number; burst: number }
    | { kind: "host"; shape: HostTableShape; slot: number; thread: number; rounds: number }
  );

/**
 * Spins until a thread that got a job with `started` has begun (so the caller's own loop runs
 * at the same time as its loop); false after `ms`.
 */
export function waitStarted(started: Int32Array, ms = 10_000): boolean {
  const end = Date.now() + ms;
  while (Atomics.load(started, 0) === 0) if (Date.now() > end) return false;
  return true;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<TableJob>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e: MessageEvent<TableJob>) => {
  const job = e.data;
  if (job.started) Atomics.store(job.started, 0, 1);
  if (job.kind === "buckets") {
    const store = new SharedBucketStore(
      new SharedKeyTable(job.buffer),
      { rate: 0.001, burst: job.burst },
      "t",
    );
    let allowed = 0;
    for (let i = 0; i < job.takes; i++) if (store.take("k", 1, Date.now()).allowed) allowed++;
    scope.postMessage({ allowed });
  } else {
    const table = HostTable.attach(job.shape, job.thread);
    const state = new HostState(
      "s/g/u",
      { enabled: true, maxFails: 100_000, failTimeoutMs: 60_000 },
      HostCells.inTable(table, job.slot),
    );
    for (let i = 0; i < job.rounds; i++) {
      state.addInFlight(1);
      state.recordFailure(`thread ${job.thread}`);
      state.addInFlight(-1);
    }
    state.addInFlight(3); // left in flight on purpose
    scope.postMessage({ done: true });
  }
};

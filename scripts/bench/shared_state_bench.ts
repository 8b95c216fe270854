/**
 * Micro-benchmark behind the choice of shared memory over messages for the state worker
 * threads share (src/workers/README.md): what a rate-limit take, an in-flight count and a
 * failure report cost through a `SharedArrayBuffer` (alone, and with a second thread taking
 * from the same table at the same time), against one message round trip to another thread,
 * which is what asking a single owner of that state would cost per request.
 *
 *   deno run -A scripts/bench/shared_state_bench.ts [operations = 1000000]
 *
 * @module
 */

import { LocalBucketStore } from "../../src/edge/bucket_store.ts";
import { HostCells, HostTable } from "../../src/health/host_cells.ts";
import { HostState } from "../../src/health/host_state.ts";
import { SharedBucketStore } from "../../src/workers/shared_bucket_store.ts";
import { SharedKeyTable } from "../../src/workers/shared_key_table.ts";
import { type TableJob, waitStarted } from "../../tests/helpers/table_worker.ts";

const N = Number(Deno.args[0] ?? 1_000_000);
const PASSIVE = { enabled: true, maxFails: 3, failTimeoutMs: 10_000 };

function time(label: string, ops: number, fn: () => void): number {
  fn(); // warm up
  const t0 = performance.now();
  fn();
  const ns = ((performance.now() - t0) * 1e6) / ops;
  console.log(`${label.padEnd(58)} ${ns.toFixed(1).padStart(8)} ns/op`);
  return ns;
}

const keys = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
const now = Date.now();

const local = new LocalBucketStore({ rate: 1e3, burst: 1e9 });
time("rate limit take, per-process store", N, () => {
  for (let i = 0; i < N; i++) local.take(keys[i % 1000], 1, now + i);
});
const table = SharedKeyTable.create(1 << 17);
const shared = new SharedBucketStore(table, { rate: 1e3, burst: 1e9 }, "site/bench");
time("rate limit take, shared table", N, () => {
  for (let i = 0; i < N; i++) shared.take(keys[i % 1000], 1, now + i);
});

// The same, while another thread takes from the same table (same keys: same locks).
const worker = new Worker(new URL("../../tests/helpers/table_worker.ts", import.meta.url), {
  type: "module",
});
const busy = new Promise<void>((resolve) => (worker.onmessage = () => resolve()));
const started = new Int32Array(new SharedArrayBuffer(4));
const job: TableJob = {
  kind: "buckets",
  buffer: table.buffer,
  takes: 4 * N,
  burst: 1e9,
  started,
};
worker.postMessage(job);
waitStarted(started);
time("rate limit take, shared table, another thread taking too", N, () => {
  for (let i = 0; i < N; i++) shared.take(keys[i % 1000], 1, now + i);
});
await busy;
worker.terminate();

const priv = new HostState("s/g/a", PASSIVE);
time("member: pick check + in-flight +1/-1 + success, own cells", N, () => {
  for (let i = 0; i < N; i++) {
    if (priv.isLive()) {
      priv.addInFlight(1);
      priv.recordSuccess();
      priv.addInFlight(-1);
    }
  }
});
const hosts = HostTable.create(3, 1 << 20);
const slot = hosts.allocate(3)!;
const sharedState = new HostState("s/g/a", PASSIVE, HostCells.inTable(hosts, slot));
time("member: the same, slot of the shared table (3 threads)", N, () => {
  for (let i = 0; i < N; i++) {
    if (sharedState.isLive()) {
      sharedState.addInFlight(1);
      sharedState.recordSuccess();
      sharedState.addInFlight(-1);
    }
  }
});
const many = { ...PASSIVE, maxFails: 1e9 };
const failing = new HostState("s/g/b", many, HostCells.inTable(hosts, hosts.allocate(8)!));
time("member: failure report (slot lock, failure window)", N / 10, () => {
  for (let i = 0; i < N / 10; i++) failing.recordFailure("connect refused");
});

// One message round trip to another thread (what asking an owner thread per request costs).
const echo = new Worker(
  URL.createObjectURL(
    new Blob(["self.onmessage = (e) => self.postMessage(e.data);"], { type: "text/javascript" }),
  ),
  { type: "module" },
);
const trips = Math.min(N / 10, 50_000);
const roundTrips = async (n: number) => {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      echo.onmessage = () => resolve();
      echo.postMessage({ key: keys[i % 1000], cost: 1, now });
    });
  }
};
await roundTrips(1000);
const t0 = performance.now();
await roundTrips(trips);
const rt = ((performance.now() - t0) * 1e6) / trips;
console.log(
  `${"message round trip to another thread (one take)".padEnd(58)} ${
    rt.toFixed(1).padStart(8)
  } ns/op`,
);
echo.terminate();

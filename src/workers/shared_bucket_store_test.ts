import { describe, it } from "node:test";
import { expect } from "expect";
import { LocalBucketStore } from "../edge/bucket_store.ts";
import { SharedBucketStore } from "./shared_bucket_store.ts";
import { SharedKeyTable } from "./shared_key_table.ts";
import { type TableJob, waitStarted } from "../../tests/helpers/table_worker.ts";

describe("SharedBucketStore", () => {
  it("answers every take as the per-process store does", () => {
    const params = { rate: 3, burst: 4 };
    const local = new LocalBucketStore(params);
    const shared = new SharedBucketStore(SharedKeyTable.create(1024), params, "site/s");
    let now = 1_700_000_000_000;
    for (let i = 0; i < 500; i++) {
      now += (i * 7919) % 450;
      const key = `10.0.0.${i % 5}`;
      const cost = 1 + (i % 3 === 0 ? 1 : 0);
      expect(shared.take(key, cost, now)).toEqual(local.take(key, cost, now));
    }
  });

  it("keeps scopes apart, and holds a fixed number of keys however many arrive", () => {
    const table = SharedKeyTable.create(64);
    const a = new SharedBucketStore(table, { rate: 1, burst: 1 }, "site/a");
    const b = new SharedBucketStore(table, { rate: 1, burst: 1 }, "site/b");
    const now = 1_700_000_000_000;
    expect(a.take("ip", 1, now).allowed).toBe(true);
    expect(a.take("ip", 1, now).allowed).toBe(false);
    expect(b.take("ip", 1, now).allowed).toBe(true);
    expect(table.capacity).toBe(64);
    for (let i = 0; i < 10_000; i++) a.take(`key ${i}`, 1, now);
    expect(table.buffer.byteLength).toBe(SharedKeyTable.create(64).buffer.byteLength);
  });

  it("two threads taking from one bucket at once get exactly `burst` tokens between them", async () => {
    const table = SharedKeyTable.create(1024);
    const burst = 2000;
    const started = new Int32Array(new SharedArrayBuffer(4));
    const w = new Worker(new URL("../../tests/helpers/table_worker.ts", import.meta.url), {
      type: "module",
    });
    const theirs = new Promise<number>((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data.allowed);
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
    const job: TableJob = { kind: "buckets", buffer: table.buffer, takes: 5000, burst, started };
    w.postMessage(job);
    try {
      expect(waitStarted(started)).toBe(true);
      // This thread takes from the same bucket while the worker does.
      const store = new SharedBucketStore(table, { rate: 0.001, burst }, "t");
      let mine = 0;
      for (let i = 0; i < 5000; i++) if (store.take("k", 1, Date.now()).allowed) mine++;
      expect(mine + await theirs).toBe(burst);
    } finally {
      w.terminate();
    }
  });
});

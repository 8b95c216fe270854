import { describe, it } from "node:test";
import { expect } from "expect";
import { HostCells, HostTable } from "./host_cells.ts";
import { HostState } from "./host_state.ts";
import { type TableJob, waitStarted } from "../../tests/helpers/table_worker.ts";

const PASSIVE = { enabled: true, maxFails: 100_000, failTimeoutMs: 60_000 };

/** Runs `job` on another thread and `mine` on this one at the same time. */
async function together(job: TableJob, mine: () => void): Promise<void> {
  const started = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(new URL("../../tests/helpers/table_worker.ts", import.meta.url), {
    type: "module",
  });
  const done = new Promise<void>((resolve, reject) => {
    w.onmessage = () => resolve();
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
  });
  w.postMessage({ ...job, started });
  try {
    expect(waitStarted(started)).toBe(true);
    mine();
    await done;
  } finally {
    w.terminate();
  }
}

describe("HostTable", () => {
  it("lets threads count into one member: totals and failures add up, in-flight per thread", async () => {
    const table = HostTable.create(2, 1 << 21);
    const slot = table.allocate(3)!;
    const state = new HostState(
      "s/g/u",
      { ...PASSIVE, maxFails: 3 },
      HostCells.inTable(table, slot),
    );
    state.configure(PASSIVE); // the owner grows the ring before the workers see the config
    const rounds = 20_000;
    await together({ kind: "host", shape: table.shape, slot, thread: 1, rounds }, () => {
      for (let i = 0; i < rounds; i++) {
        state.addInFlight(1);
        state.recordFailure("thread 0");
        state.addInFlight(-1);
      }
      state.addInFlight(3);
    });
    expect(state.totalFailures).toBe(2 * rounds);
    expect(state.totalRequests).toBe(2 * rounds);
    expect(state.recentFailures()).toBe(2 * rounds);
    expect(state.lastError).toMatch(/^thread [01]$/);
    expect(state.inFlight).toBe(6);
    table.clearThread(1);
    expect(state.inFlight).toBe(3);
    table.clearThread(0);
    expect(state.inFlight).toBe(0);
    expect(state.totalRequests).toBe(2 * rounds); // totals survive a thread
  });

  it("shares an ejection and the active verdict with every thread's view", () => {
    const table = HostTable.create(2, 1 << 16);
    const slot = table.allocate(2)!;
    const passive = { enabled: true, maxFails: 2, failTimeoutMs: 10_000 };
    const owner = new HostState("k", passive, HostCells.inTable(table, slot));
    const view = new HostState(
      "k",
      passive,
      HostCells.inTable(HostTable.attach(table.shape, 1), slot),
    );
    view.recordFailure("refused");
    expect(owner.isLive()).toBe(true);
    owner.recordFailure("reset");
    expect(view.isLive()).toBe(false);
    expect(view.isEjected()).toBe(true);
    const checker = {};
    owner.claimActive(checker);
    owner.recordSuccess(true);
    expect(view.isLive()).toBe(true);
    expect(owner.recordCheck(checker, false, 1, 1, "down")).toBe(false);
    expect(view.isLive()).toBe(false);
    expect(view.activeUp).toBe(false);
    expect(view.lastError).toBe("down");
  });

  it("a slot given back serves another member only after its time, once nothing counts in it, zeroed", () => {
    const table = HostTable.create(2, 4096);
    const slots: number[] = [];
    for (let s = table.allocate(2, 0); s !== null; s = table.allocate(2, 0)) slots.push(s);
    const slot = slots[0];
    const old = new HostState("old", { ...PASSIVE, maxFails: 2 }, HostCells.inTable(table, slot));
    old.recordFailure("refused");
    old.addInFlight(1); // a request of the old plan still finishing
    table.release(slot, 1000);
    expect(table.allocate(2, 999)).toBeNull(); // full, and the slot's time has not come
    expect(table.allocate(2, 5000)).toBeNull(); // its time came, but a request still counts
    old.addInFlight(-1);
    // A ring bigger than the old one is found elsewhere in the table: none left here.
    expect(table.allocate(50, 5000)).toBeNull();
    expect(table.allocate(2, 5000)).toBe(slot);
    expect(table.retired).toBe(0);
    const next = new HostState("new", { ...PASSIVE, maxFails: 2 }, HostCells.inTable(table, slot));
    expect(next.totalRequests).toBe(0);
    expect(next.totalFailures).toBe(0);
    expect(next.recentFailures()).toBe(0);
    expect(next.lastError).toBe("");
    expect(next.isLive()).toBe(true);
    next.recordFailure("one");
    next.recordFailure("two"); // maxFails 2: its ring holds both and ejects
    expect(next.isLive()).toBe(false);
  });

  it("a full table allocates nothing more; a worker's view allocates nothing", () => {
    const table = HostTable.create(2, 4096);
    let n = 0;
    while (table.allocate(3) !== null) n++;
    expect(n).toBeGreaterThan(0);
    expect(table.used).toBeLessThanOrEqual(4096);
    expect(HostTable.attach(table.shape, 1).allocate(3)).toBeNull();
  });
});

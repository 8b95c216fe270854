import { describe, it } from "node:test";
import { expect } from "expect";
import { parseStat, statusBytes, treeCpuNs, treeCpuTicks } from "./proc_stats.ts";

describe("parseStat", () => {
  it("reads ppid and the four time fields past a name with spaces and parentheses", () => {
    const line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
    expect(parseStat(line)).toEqual({ pid: 4242, ppid: 17, ticks: 13 });
  });
});

/** A shell loop that burns CPU (bounded, and killed with its process group by the test). */
const BUSY = "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done";

/**
 * Spawns `sh -c script`, then polls `read(pid)` until it has grown by more than `min` or 8 s
 * have passed (a loaded machine gives the child little CPU); resolves with the growth seen.
 */
async function growthOf(
  script: string,
  read: (pid: number) => number,
  min: number,
): Promise<number> {
  const child = new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "null",
    stderr: "null",
    detached: true, // its own process group, killed as a whole below
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 100)); // let the shell fork its grandchild
    const before = read(child.pid);
    const deadline = Date.now() + 8000;
    let grown = 0;
    while (grown <= min && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      grown = read(child.pid) - before;
    }
    return grown;
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
  }
}

describe("treeCpuTicks", () => {
  it("counts CPU burnt by a grandchild of the process", async () => {
    // sh -> sh -> busy loop. The parent shell itself only waits.
    const grown = await growthOf(`sh -c '${BUSY}' & wait`, treeCpuTicks, 5);
    expect(grown).toBeGreaterThan(5);
  });

  it("counts nanoseconds run by a busy child's threads", async () => {
    expect(await growthOf(BUSY, treeCpuNs, 50_000_000)).toBeGreaterThan(50_000_000);
    // A process that does not exist has run for no time.
    expect(treeCpuNs(2 ** 30)).toBe(0);
  });

  it("reads resident memory of this process", () => {
    expect(statusBytes(Deno.pid, "VmRSS")).toBeGreaterThan(1024 * 1024);
    // RSS first: the peak read afterwards can only be as high or higher.
    const rss = statusBytes(Deno.pid, "VmRSS");
    expect(statusBytes(Deno.pid, "VmHWM")).toBeGreaterThanOrEqual(rss);
    expect(statusBytes(2 ** 30, "VmRSS")).toBe(0);
  });
});

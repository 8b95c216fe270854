import { describe, it } from "node:test";
import { expect } from "expect";
import { parseStat, statusBytes, treeCpuNs, treeCpuTicks } from "./proc_stats.ts";

describe("parseStat", () => {
  it("reads ppid and the four time fields past a name with spaces and parentheses", () => {
    const line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
    expect(parseStat(line)).toEqual({ pid: 4242, ppid: 17, ticks: 13 });
  });
});

describe("treeCpuTicks", () => {
  it("counts CPU burnt by a grandchild of the process", async () => {
    // sh -> sh -> busy loop for ~0.6 s of CPU.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        "sh -c 'i=0; end=$(($(date +%s%N)+600000000)); while [ $(date +%s%N) -lt $end ]; do i=$((i+1)); done' & wait",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const before = treeCpuTicks(child.pid);
      await new Promise((r) => setTimeout(r, 400));
      const during = treeCpuTicks(child.pid);
      await child.status;
      expect(during - before).toBeGreaterThan(5);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
  });

  it("counts nanoseconds run by a busy child's threads", async () => {
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        "i=0; end=$(($(date +%s%N)+600000000)); while [ $(date +%s%N) -lt $end ]; do i=$((i+1)); done",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const before = treeCpuNs(child.pid);
      await new Promise((r) => setTimeout(r, 400));
      const during = treeCpuNs(child.pid);
      expect(during - before).toBeGreaterThan(50_000_000);
      // A process that does not exist has run for no time.
      expect(treeCpuNs(2 ** 30)).toBe(0);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
    }
  });

  it("reads resident memory of this process", () => {
    expect(statusBytes(Deno.pid, "VmRSS")).toBeGreaterThan(1024 * 1024);
    // RSS first: the peak read afterwards can only be as high or higher.
    const rss = statusBytes(Deno.pid, "VmRSS");
    expect(statusBytes(Deno.pid, "VmHWM")).toBeGreaterThanOrEqual(rss);
    expect(statusBytes(2 ** 30, "VmRSS")).toBe(0);
  });
});

/** Linux /proc readings: CPU time of a process tree and memory of one process. */

/** Clock ticks per second for /proc/<pid>/stat times (`getconf CLK_TCK`). */
export async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).output();
    const ticks = Number(new TextDecoder().decode(out.stdout).trim());
    if (Number.isFinite(ticks) && ticks > 0) return ticks;
  } catch {
    // Fall through to the Linux default.
  }
  return 100;
}

interface StatLine {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  readonly ticks: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses. */
export function parseStat(text: string): StatLine | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(" ")));
  // Fields after the name start at field 3 (state): ppid is field 4, utime..cstime 14..17.
  const rest = text.slice(close + 2).split(" ");
  const field = (n: number) => Number(rest[n - 3]);
  return { pid, ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17) };
}

function allStatLines(): StatLine[] {
  const all: StatLine[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const line = parseStat(Deno.readTextFileSync(`/proc/${entry.name}/stat`));
      if (line) all.push(line);
    } catch {
      // Exited while we were looking.
    }
  }
  return all;
}

/** `rootPid` and its live descendants among `all`. Bounded by the tree's depth (64 passes). */
function treeMembers(rootPid: number, all: readonly StatLine[]): Set<number> {
  const inTree = new Set([rootPid]);
  // Parents may be listed after children: repeat until no new member (at most depth passes).
  for (let grew = true, pass = 0; grew && pass < 64; pass++) {
    grew = false;
    for (const line of all) {
      if (!inTree.has(line.pid) && inTree.has(line.ppid)) {
        inTree.add(line.pid);
        grew = true;
      }
    }
  }
  return inTree;
}

/**
 * CPU clock ticks (user + system, including reaped children) of `rootPid` and every live
 * descendant. Bounded by the number of entries in /proc.
 */
export function treeCpuTicks(rootPid: number): number {
  const all = allStatLines();
  const inTree = treeMembers(rootPid, all);
  let ticks = 0;
  for (const line of all) if (inTree.has(line.pid)) ticks += line.ticks;
  return ticks;
}

/**
 * Nanoseconds every live thread of `rootPid` and of its live descendants has run
 * (/proc/<pid>/task/<tid>/schedstat). Finer than clock ticks, for short runs; threads and
 * processes that ended are not counted, so use it on long-lived processes.
 */
export function treeCpuNs(rootPid: number): number {
  let total = 0;
  for (const pid of treeMembers(rootPid, allStatLines())) {
    let tasks: Iterable<Deno.DirEntry>;
    try {
      tasks = Deno.readDirSync(`/proc/${pid}/task`);
    } catch {
      continue; // Exited.
    }
    try {
      for (const task of tasks) {
        try {
          const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`);
          total += Number(text.slice(0, text.indexOf(" ")));
        } catch {
          // The thread ended.
        }
      }
    } catch {
      // The process ended while its threads were listed.
    }
  }
  return total;
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM …) in bytes, or 0 when unavailable. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

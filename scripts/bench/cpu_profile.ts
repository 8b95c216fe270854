/** Reads a V8 `.cpuprofile` (as written by `deno run --cpu-prof`). */

interface ProfileNode {
  readonly id: number;
  readonly children?: readonly number[];
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

/** The parts of a `.cpuprofile` this module reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function's self time. */
export interface SelfTime {
  /** `name (file:line)`. */
  readonly frame: string;
  readonly micros: number;
  /** Share of all sampled time, 0-1. */
  readonly share: number;
}

function frameName(node: ProfileNode, prefix: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = (url.startsWith(prefix) ? url.slice(prefix.length) : url)
    .replace(/^.*\/node_modules\//, "");
  const name = functionName || "(anonymous)";
  return file ? `${name} (${file}:${lineNumber + 1})` : name;
}

/** Samples where the thread waited; left out of every share. */
const IDLE = "(idle)";

/**
 * Self time per function (samples attributed to the node they hit), largest first, as shares
 * of busy (non-idle) time.
 */
export function selfTimes(profile: CpuProfile, prefix = "file:///work/main/"): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const micros = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!node || delta < 0 || node.callFrame.functionName === IDLE) continue;
    const frame = frameName(node, prefix);
    micros.set(frame, (micros.get(frame) ?? 0) + delta);
    total += delta;
  }
  return [...micros]
    .map(([frame, us]) => ({ frame, micros: us, share: total > 0 ? us / total : 0 }))
    .sort((a, b) => b.micros - a.micros);
}

/** The top `count` self-time lines (shares of busy time), formatted `  12.3%  name (file:line)`. */
export function summarizeCpuProfile(
  profile: CpuProfile,
  count = 20,
  prefix = "file:///work/main/",
): string[] {
  return selfTimes(profile, prefix)
    .slice(0, count)
    .map((t) => `${(t.share * 100).toFixed(1).padStart(5)}%  ${t.frame}`);
}

/**
 * Busy time grouped by the innermost project file on each sample's stack (files under
 * `prefix`), largest first; samples with no project frame count as "(runtime)".
 */
export function busyByFile(profile: CpuProfile, prefix = "file:///work/main/"): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const micros = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    let node = byId.get(profile.samples[i]);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!node || delta < 0 || node.callFrame.functionName === IDLE) continue;
    let file = "(runtime)";
    // Bounded by the stack depth: parent links form a tree.
    for (let depth = 0; node && depth < 10_000; depth++) {
      if (node.callFrame.url.startsWith(prefix)) {
        file = node.callFrame.url.slice(prefix.length);
        break;
      }
      const up = parent.get(node.id);
      node = up === undefined ? undefined : byId.get(up);
    }
    micros.set(file, (micros.get(file) ?? 0) + delta);
    total += delta;
  }
  return [...micros]
    .map(([frame, us]) => ({ frame, micros: us, share: total > 0 ? us / total : 0 }))
    .sort((a, b) => b.micros - a.micros);
}

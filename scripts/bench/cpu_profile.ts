/** Reads a V8 `.cpuprofile` (as written by `deno run --cpu-prof`). */

interface ProfileNode {
  readonly id: number;
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

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\/\/work\/main\//, "").replace(/^.*\/node_modules\//, "");
  const name = functionName || "(anonymous)";
  return file ? `${name} (${file}:${lineNumber + 1})` : name;
}

/** Self time per function (samples attributed to the node they hit), largest first. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const micros = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!node || delta < 0) continue;
    const frame = frameName(node);
    micros.set(frame, (micros.get(frame) ?? 0) + delta);
    total += delta;
  }
  return [...micros]
    .map(([frame, us]) => ({ frame, micros: us, share: total > 0 ? us / total : 0 }))
    .sort((a, b) => b.micros - a.micros);
}

/** The top `count` self-time lines, formatted `  12.3%  name (file:line)`. */
export function summarizeCpuProfile(profile: CpuProfile, count = 20): string[] {
  return selfTimes(profile)
    .slice(0, count)
    .map((t) => `${(t.share * 100).toFixed(1).padStart(5)}%  ${t.frame}`);
}

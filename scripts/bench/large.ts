/** Large streamed bodies through bws, watching its resident memory. */

import { statusBytes } from "./proc_stats.ts";

/** One curl transfer. */
export interface Transfer {
  readonly ok: boolean;
  readonly bytes: number;
  readonly seconds: number;
  /** Why it failed, when it did. */
  readonly detail: string;
}

/** What {@linkcode runLarge} measured. */
export interface LargeResult {
  readonly upload: Transfer;
  readonly download: Transfer;
  /** VmRSS of the proxy before the transfers, bytes. */
  readonly baselineRss: number;
  /** Highest VmRSS sampled (every 100 ms) during the upload, bytes. */
  readonly uploadPeakRss: number;
  /** VmRSS when the download started (after the upload), bytes. */
  readonly downloadStartRss: number;
  /** Highest VmRSS sampled (every 100 ms) during the download, bytes. */
  readonly downloadPeakRss: number;
}

/** Options of {@linkcode runLarge}. */
export interface LargeOptions {
  /** `http://127.0.0.1:PORT` of the proxy. */
  readonly base: string;
  readonly host: string;
  /** Process whose VmRSS is sampled. */
  readonly pid: number;
  /** Bytes sent up and pulled down. */
  readonly bytes: number;
}

/** Runs a shell pipeline with a hard time limit; resolves with stdout, exit code and time. */
async function shell(script: string, limitMs: number) {
  const started = performance.now();
  const child = new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const guard = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, limitMs);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    clearTimeout(guard);
  }
}

/**
 * Sends `bytes` up (with Content-Length, as a file upload has) and pulls `bytes` down through
 * the proxy. Chunked uploads are not measured here.
 */
export async function runLarge(o: LargeOptions): Promise<LargeResult> {
  // At least 20 MB/s, plus slack: a stuck transfer must not hang the benchmark.
  const limitMs = 30_000 + o.bytes / 20_000;
  const baselineRss = statusBytes(o.pid, "VmRSS");
  let peakRss = baselineRss;
  let uploadPeakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, statusBytes(o.pid, "VmRSS"));
  }, 100);
  try {
    const up = await shell(
      `head -c ${o.bytes} /dev/zero | curl -sS -H 'Expect:' -H 'Host: ${o.host}' ` +
        `-H 'Content-Length: ${o.bytes}' -H 'Transfer-Encoding:' -T - ` +
        `-w '\\n%{http_code}' ${o.base}/large/upload`,
      limitMs,
    );
    // stdout: the backend's answer (the byte count it read), then curl's status line.
    const lines = up.stdout.trim().split("\n");
    const status = lines.pop() ?? "";
    const answer = lines.join(" ").trim();
    const upOk = up.code === 0 && status === "200" && Number(answer) === o.bytes;
    const upload: Transfer = {
      ok: upOk,
      bytes: status === "200" ? Number(answer) || 0 : 0,
      seconds: up.seconds,
      detail: upOk ? "" : `curl exit ${up.code}, status ${status}: ${answer.slice(0, 120)} ` +
        up.stderr.trim(),
    };
    uploadPeakRss = peakRss;
    const downloadStartRss = statusBytes(o.pid, "VmRSS");
    peakRss = downloadStartRss;
    const down = await shell(
      `curl -sS -o /dev/null -H 'Host: ${o.host}' -w '%{http_code} %{size_download}' ` +
        `'${o.base}/large/download?bytes=${o.bytes}'`,
      limitMs,
    );
    const [code = "", size = "0"] = down.stdout.trim().split(" ");
    const downOk = down.code === 0 && code === "200" && Number(size) === o.bytes;
    const download: Transfer = {
      ok: downOk,
      bytes: Number(size) || 0,
      seconds: down.seconds,
      detail: downOk ? "" : `curl exit ${down.code}, status ${code}, got ${size} bytes ` +
        down.stderr.trim(),
    };
    peakRss = Math.max(peakRss, statusBytes(o.pid, "VmRSS"));
    return {
      upload,
      download,
      baselineRss,
      uploadPeakRss,
      downloadStartRss,
      downloadPeakRss: peakRss,
    };
  } finally {
    clearInterval(sampler);
  }
}

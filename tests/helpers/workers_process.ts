/**
 * The test's side of `workers_harness.ts`: starts bws with worker threads in a subprocess from
 * TOML text and asks it for what only the running server knows (its workers, upstream state,
 * log lines), makes a worker fail, reloads. The management API (enable it in the TOML) answers
 * `/metrics` and `/api/status`.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReloadResult, UpstreamGroupState } from "../../src/server/types.ts";
import type { WorkerInfo } from "../../src/workers/worker_pool.ts";
import { parseProm } from "./prom_parse.ts";

const HARNESS = fileURLToPath(new URL("./workers_harness.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A bws with worker threads running in a subprocess. */
export class WorkersBws {
  readonly port: number;
  readonly admin: string | null;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #dir: string;
  #buffered = "";
  #queue: Promise<unknown> = Promise.resolve();
  stderr = "";

  private constructor(
    child: Deno.ChildProcess,
    reader: ReadableStreamDefaultReader<string>,
    dir: string,
    first: { port: number; admin: string | null },
    buffered: string,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reader = reader;
    this.#dir = dir;
    this.port = first.port;
    this.admin = first.admin;
    this.#buffered = buffered;
  }

  /** Starts bws from `toml` (relative paths resolve against a temp dir of its own). */
  static async start(toml: string): Promise<WorkersBws> {
    const dir = await Deno.makeTempDir({ prefix: "bws_workers_" });
    const path = join(dir, "bws.toml");
    await Deno.writeTextFile(path, toml);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", HARNESS, path],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let stderr = "";
    const errDone = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
    })();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    const deadline = Date.now() + 30_000;
    while (!buffered.includes("\n")) {
      const next = await Promise.race([
        reader.read(),
        new Promise<null>((r) => setTimeout(() => r(null), Math.max(0, deadline - Date.now()))),
      ]);
      if (next === null || next.done) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
        await errDone;
        throw new Error(`Cannot start bws with workers:\n${stderr}`);
      }
      buffered += next.value;
    }
    const nl = buffered.indexOf("\n");
    const bws = new WorkersBws(
      child,
      reader,
      dir,
      JSON.parse(buffered.slice(0, nl)),
      buffered.slice(nl + 1),
    );
    void errDone.then(() => (bws.stderr = stderr));
    return bws;
  }

  workers(): Promise<WorkerInfo[]> {
    return this.#ask({ cmd: "workers" }) as Promise<WorkerInfo[]>;
  }

  upstreams(): Promise<UpstreamGroupState[]> {
    return this.#ask({ cmd: "upstreams" }) as Promise<UpstreamGroupState[]>;
  }

  generation(): Promise<number> {
    return this.#ask({ cmd: "generation" }) as Promise<number>;
  }

  /** Log lines written so far (`level message {fields}`). */
  logs(): Promise<string[]> {
    return this.#ask({ cmd: "logs" }) as Promise<string[]>;
  }

  /** Makes worker `id` fail as a bug would (an uncaught error). */
  async fail(id: number): Promise<void> {
    await this.#ask({ cmd: "fail", id });
  }

  /** Reloads from new TOML text. */
  async reload(toml: string): Promise<ReloadResult> {
    const path = join(this.#dir, `reload-${Date.now()}.toml`);
    await Deno.writeTextFile(path, toml);
    return await this.#ask({ cmd: "reload", path }) as ReloadResult;
  }

  async metrics(): Promise<ReturnType<typeof parseProm>> {
    return parseProm(await (await fetch(`${this.admin}/metrics`)).text());
  }

  async status(): Promise<Record<string, any>> {
    return await (await fetch(`${this.admin}/api/status`)).json();
  }

  /** Requests answered by worker 1 and worker 2 so far. */
  async perWorker(): Promise<number[]> {
    const m = await this.metrics();
    return [1, 2].map((id) => m.value("bws_worker_requests_total", { worker: String(id) }) ?? 0);
  }

  /** Graceful stop; removes the temp dir. */
  async stop(): Promise<void> {
    try {
      await Promise.race([
        this.#ask({ cmd: "stop" }),
        new Promise((r) => setTimeout(r, 10_000)),
      ]);
    } catch {
      // gone already
    }
    try {
      this.#child.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#child.status;
    await this.#writer.close().catch(() => {});
    await this.#reader.cancel().catch(() => {});
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }

  #ask(command: Record<string, unknown>): Promise<unknown> {
    const run = this.#queue.then(async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
      while (!this.#buffered.includes("\n")) {
        const { value, done } = await this.#reader.read();
        if (done) throw new Error(`bws exited while answering ${command.cmd}:\n${this.stderr}`);
        this.#buffered += value;
      }
      const nl = this.#buffered.indexOf("\n");
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      return JSON.parse(line);
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

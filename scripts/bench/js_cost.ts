/**
 * The JavaScript cost of one proxied request, without the kernel or the machine's noise: bws
 * (started from `startServer` with the bench config) serves fake client sockets and talks to a
 * fake upstream, all in this process, so the time per request is bws's own code, V8 and the few
 * ops that are not socket I/O. The socket promises resolve a macrotask later (a MessageChannel
 * tick), as real reads do. Differences of ~0.2 µs show up between runs, which the real benchmark
 * (`deno task bench`, ±1.5 µs on a shared 2-core VM) cannot resolve; use it to compare two
 * checkouts, then confirm with the real one.
 *
 *   deno run -A --config deno.json scripts/bench/js_cost.ts [repo dir] [connections] [requests]
 *
 * With `JS_COST_HEAP=1` it also samples what the measured requests allocate (V8's sampling heap
 * profiler through `node:inspector`, collected objects included) and prints the bytes per request
 * by allocating function: each KB per request is GC work and fresh cache lines touched.
 *
 * @module
 */

import inspector from "node:inspector";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { bwsToml } from "./configs.ts";

const [repo = new URL("../..", import.meta.url).pathname, connsArg = "32", reqsArg = "150000"] =
  Deno.args;
const CONNS = Number(connsArg);
const TOTAL = Number(reqsArg);
const PORT = 9700;
const WARM = Math.min(100_000, TOTAL);
/** Requests sent in all: the warm-up, the measured ones, and one more per connection. */
const LAST = WARM + TOTAL + CONNS;

const enc = new TextEncoder();
const REQUEST = enc.encode("GET /api/bench HTTP/1.1\r\nHost: api.bench.test\r\n\r\n");
const RESPONSE = enc.encode(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 14:01:32 GMT\r\n" +
    "Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n",
);

let served = 0;
let target = 0;
let onTarget: (() => void) | null = null;

// Socket promises settle in a later macrotask, a batch at a time, as the event loop delivers reads.
const ready: FakeSocket[] = [];
let scheduled = false;
const tick = new MessageChannel();
tick.port2.onmessage = () => {
  scheduled = false;
  for (const s of ready.splice(0)) s.deliver();
};
function later(s: FakeSocket): void {
  ready.push(s);
  if (!scheduled) {
    scheduled = true;
    tick.port1.postMessage(0);
  }
}

const addr = (port: number): Deno.NetAddr => ({ transport: "tcp", hostname: "127.0.0.1", port });

/** One end of a fake connection: each write of the other side makes `data` readable once. */
class FakeSocket {
  #pending = 0;
  #parked: ((n: number | null) => void) | null = null;
  #parkedBuf: Uint8Array | null = null;
  #closed = false;
  readonly remoteAddr = addr(40000);
  readonly localAddr = addr(PORT);
  constructor(readonly data: Uint8Array, readonly client: boolean) {}

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.resolve(null);
    if (this.#pending > 0) {
      this.#pending--;
      buf.set(this.data);
      return Promise.resolve(this.data.length);
    }
    return new Promise((resolve) => {
      this.#parked = resolve;
      this.#parkedBuf = buf;
    });
  }

  deliver(): void {
    const resolve = this.#parked;
    if (resolve === null) {
      this.#pending++;
      return;
    }
    this.#parked = null;
    this.#parkedBuf!.set(this.data);
    resolve(this.data.length);
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.client) {
      // A response went out: the client sends its next request.
      if (++served === target) onTarget?.();
      if (served < LAST) later(this);
    } else {
      later(this); // the upstream answers the request just written
    }
    return Promise.resolve(buf.length);
  }

  close(): void {
    this.#closed = true;
    const resolve = this.#parked;
    this.#parked = null;
    resolve?.(null);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  setNoDelay(): void {}
  setKeepAlive(): void {}
  ref(): void {}
  unref(): void {}
}

const realListen = Deno.listen;
// deno-lint-ignore no-explicit-any
(Deno as any).listen = (opts: Deno.TcpListenOptions) => {
  if (opts.port !== PORT) return realListen(opts);
  let accepted = 0;
  let stop: (() => void) | null = null;
  return {
    addr: addr(PORT),
    accept(): Promise<FakeSocket> {
      if (accepted++ < CONNS) {
        const s = new FakeSocket(REQUEST, true);
        s.deliver();
        return Promise.resolve(s);
      }
      return new Promise((_, reject) => {
        stop = () => reject(new Deno.errors.BadResource("closed"));
      });
    },
    close: () => stop?.(),
    ref() {},
    unref() {},
  };
};
// deno-lint-ignore no-explicit-any
(Deno as any).connect = () => Promise.resolve(new FakeSocket(RESPONSE, false));

const dir = await Deno.makeTempDir({ prefix: "bws-js-cost-" });
const configPath = `${dir}/bws.toml`;
await Deno.writeTextFile(
  configPath,
  bwsToml({
    port: PORT,
    backendPort: 9601,
    streamPort: 9602,
    accessLogPath: `${dir}/access.log`,
    staticDir: dir,
  }),
);
const { startFromFile } = await import(pathToFileURL(resolve(repo, "mod.ts")).href);
await startFromFile(configPath);

function until(n: number): Promise<void> {
  target = n;
  return new Promise((resolve) => (onTarget = resolve));
}
await until(WARM);
const heap = Deno.env.get("JS_COST_HEAP") === "1" ? await startHeapSampling() : null;
const t0 = performance.now();
await until(WARM + TOTAL);
const us = ((performance.now() - t0) * 1000) / TOTAL;
console.log(`${us.toFixed(2)} µs per request (JavaScript only; ${CONNS} connections)`);
if (heap !== null) await heap.report(TOTAL);
await Deno.remove(dir, { recursive: true });
Deno.exit(0);

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Starts V8's sampling heap profiler; `report` prints bytes allocated per request by function. */
async function startHeapSampling(): Promise<{ report(requests: number): Promise<void> }> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((ok, fail) =>
      session.post(
        method,
        params,
        (err: Error | null, result: unknown) => err ? fail(err) : ok(result),
      )
    );
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async report(requests: number) {
      const { profile } = await post("HeapProfiler.stopSampling") as {
        profile: { head: SamplingNode };
      };
      const bytes = new Map<string, number>();
      let total = 0;
      const walk = (n: SamplingNode) => {
        const f = n.callFrame;
        const where = `${f.functionName || "(anonymous)"} ${
          f.url.replace(/^.*\/(src|ext|scripts)\//, "$1/")
        }:${f.lineNumber + 1}`;
        bytes.set(where, (bytes.get(where) ?? 0) + n.selfSize);
        total += n.selfSize;
        for (const c of n.children) walk(c);
      };
      walk(profile.head);
      console.log(`allocated: ${(total / requests / 1024).toFixed(1)} KB per request`);
      for (const [where, b] of [...bytes].sort((x, y) => y[1] - x[1]).slice(0, 25)) {
        console.log(`${(b / requests).toFixed(0).padStart(7)} B  ${where}`);
      }
    },
  };
}

/**
 * Micro-benchmark: UpstreamClient versus fetch (with a pooled Deno.createHttpClient) against the
 * same local upstream, a Deno.serve in a child process so its CPU is not on the measured thread.
 * Reports requests/s and client CPU per request (process.cpuUsage: robust when the machine is
 * shared), in interleaved rounds.
 *
 *   deno run -A scripts/bench/client_bench.ts [requests per round = 4000] [rounds = 3]
 *
 * @module
 */

import process from "node:process";
import { UpstreamClient } from "../../src/upstream/client.ts";
import { parseUpstreamUrl } from "../../src/upstream/target.ts";

const UPSTREAM = `
const small = "x".repeat(2048);
const big = new Uint8Array(256 * 1024);
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen(a) { console.log(a.port); } }, async (req) => {
  if (req.method === "POST") return new Response(await req.arrayBuffer());
  return new Response(new URL(req.url).pathname === "/big" ? big : small);
});`;

const N = Number(Deno.args[0] ?? 4000);
const ROUNDS = Number(Deno.args[1] ?? 3);
const CONCURRENCY = [1, 32];

const child = new Deno.Command(Deno.execPath(), {
  args: ["eval", UPSTREAM],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
const port = Number(((await reader.read()).value ?? "").trim());

const target = parseUpstreamUrl(`http://127.0.0.1:${port}`);
const client = new UpstreamClient({ maxIdlePerOrigin: 64 });
const httpClient = Deno.createHttpClient({ poolMaxIdlePerHost: 64, allowHost: true });
const timeouts = { connectMs: 5000, readMs: 30000, writeMs: 30000 };
const headers: [string, string][] = [
  ["Host", "bench.test"],
  ["User-Agent", "bench"],
  ["Accept", "*/*"],
  ["X-Forwarded-For", "10.0.0.1"],
];
const postBody = new Uint8Array(1024);

type Op = (path: string, method: string) => Promise<void>;

const ours: Op = async (path, method) => {
  const res = await client.request(target, {
    method,
    target: path,
    headers,
    body: method === "POST" ? postBody : null,
    bodyLength: null,
    timeouts,
  });
  if (res.body) { for await (const _ of res.body) { /* drain */ } }
};

const viaFetch: Op = async (path, method) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers,
    body: method === "POST" ? postBody : null,
    client: httpClient,
  });
  if (res.body) { for await (const _ of res.body) { /* drain */ } }
};

async function run(op: Op, path: string, method: string, n: number, conc: number) {
  let left = n;
  const worker = async () => {
    while (left-- > 0) await op(path, method);
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { rps: n / (ms / 1000), cpuUs: (cpu.user + cpu.system) / n };
}

const cases: [string, string, string][] = [
  ["GET 2 KB", "/", "GET"],
  ["POST 1 KB echo", "/", "POST"],
  ["GET 256 KB", "/big", "GET"],
];
console.log(`requests per round: ${N}, rounds: ${ROUNDS} (numbers: median of rounds)`);
console.log(
  "case                       conc | ours req/s  cpu µs/req | fetch req/s cpu µs/req | cpu ratio",
);
for (const [name, path, method] of cases) {
  for (const conc of CONCURRENCY) {
    const n = path === "/big" ? Math.ceil(N / 8) : N;
    await run(ours, path, method, Math.min(200, n), conc); // warm up both
    await run(viaFetch, path, method, Math.min(200, n), conc);
    const a: { rps: number; cpuUs: number }[] = [];
    const b: { rps: number; cpuUs: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      a.push(await run(ours, path, method, n, conc));
      b.push(await run(viaFetch, path, method, n, conc));
    }
    const med = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const ar = med(a.map((x) => x.rps)), ac = med(a.map((x) => x.cpuUs));
    const br = med(b.map((x) => x.rps)), bc = med(b.map((x) => x.cpuUs));
    console.log(
      `${name.padEnd(26)} ${String(conc).padStart(4)} | ${ar.toFixed(0).padStart(10)} ${
        ac.toFixed(1).padStart(11)
      } | ${br.toFixed(0).padStart(11)} ${bc.toFixed(1).padStart(10)} | ${(bc / ac).toFixed(2)}x`,
    );
  }
}

client.close();
httpClient.close();
reader.releaseLock();
child.kill();
await child.status;

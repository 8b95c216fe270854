/**
 * `server.workers = 2` (SPEC 12): two worker threads accepting on one port, with the state the
 * SPEC says they share, the management API adding them up, reloads applied to both and a worker
 * that dies restarted. Real sockets, real backends, real threads; bws runs in a process of its
 * own (tests/helpers/workers_harness.ts) that the test asks what only the server knows.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, deadAddress, rawRequest, startEchoBackend } from "./helpers/backends.ts";
import { WorkersBws } from "./helpers/workers_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: WorkersBws[] = [];
const backends: Backend[] = [];
/** Holds released at the end, so a failed test cannot leave a backend waiting for ever. */
const releases: (() => void)[] = [];
after(async () => {
  for (const release of releases) release();
  await Promise.all(running.map((r) => r.stop()));
  await Promise.all(backends.map((b) => b.close()));
});

function toml(upstreams: string[], extra = "", server = ""): string {
  return `
[server]
workers = 2
grace_period = 2
${server}

[management]
enabled = true
port = 0

[logging]
level = "warn"

[[sites]]
name = "s"
hostname = "localhost"
port = 0
bind = "127.0.0.1"

[sites.proxy]
enabled = true
${
    upstreams.map((u) => `
[[sites.proxy.upstreams]]
name = "b"
url = "${u}"
`).join("")
  }
[[sites.proxy.routes]]
path = "/"
upstream = "b"
${extra}
`;
}

async function start(text: string): Promise<WorkersBws> {
  const r = await WorkersBws.start(text);
  running.push(r);
  return r;
}

async function stop(r: WorkersBws): Promise<void> {
  running.splice(running.indexOf(r), 1);
  await r.stop();
}

function backend(id: string, custom?: Parameters<typeof startEchoBackend>[1]): Backend {
  const b = startEchoBackend(id, custom);
  backends.push(b);
  return b;
}

/** One GET on a connection of its own (so the kernel picks a worker for each). */
async function freshGet(port: number, path = "/"): Promise<{ status: number; text: string }> {
  const raw = await rawRequest(
    port,
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    5000,
  );
  const status = Number(raw.slice(9, 12)) || 0;
  return { status, text: raw };
}

/** Requests answered by each worker so far. */
function perWorker(r: WorkersBws): Promise<number[]> {
  return r.perWorker();
}

describe("server.workers = 2", () => {
  it("both workers take connections; /metrics counts each and adds them up", async () => {
    const b = backend("one");
    const r = await start(toml([b.url]));
    const answers = [];
    for (let i = 0; i < 40; i++) answers.push(await freshGet(r.port, `/n${i}`));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const [w1, w2] = await perWorker(r);
    expect(w1).toBeGreaterThan(0);
    expect(w2).toBeGreaterThan(0);
    expect(w1 + w2).toBe(40);
    const m = await r.metrics();
    expect(m.value("bws_requests_total", { site: "s", route: "/", code: "2xx" })).toBe(40);
    expect(m.value("bws_upstream_requests_total", { site: "s", group: "b", url: b.url })).toBe(40);
    expect(m.value("bws_request_duration_seconds_count", { site: "s" })).toBe(40);
    expect(m.value("bws_worker_up", { worker: "1" })).toBe(1);
    const status = await r.status();
    expect(status.workers.map((w: { id: number }) => w.id)).toEqual([1, 2]);
    expect(status.workers.map((w: { state: string }) => w.state)).toEqual(["running", "running"]);
    expect(status.workers[0].requests + status.workers[1].requests).toBe(40);
    expect(status.upstreams[0].members[0].requests).toBe(40);
    await stop(r);
  });

  it("a reload under load fails no request, and both workers serve the new config", async () => {
    const b = backend("one");
    const text = (version: string) =>
      toml([b.url], `[sites.headers]\n"X-Version" = "${version}"\n`);
    const r = await start(text("1"));
    let done_ = false;
    let failed = 0;
    let done = 0;
    const client = async () => {
      const deadline = Date.now() + 10_000;
      while (!done_ && Date.now() < deadline) {
        const a = await freshGet(r.port);
        if (a.status !== 200) failed++;
        done++;
      }
    };
    const load = Promise.all([client(), client(), client(), client()]);
    for (let v = 2; v <= 4; v++) {
      await sleep(150);
      const result = await r.reload(text(String(v)));
      expect(result).toEqual({ ok: true, generation: v });
    }
    await sleep(150);
    done_ = true;
    await load;
    expect(done).toBeGreaterThan(20);
    expect(failed).toBe(0);
    const before = await perWorker(r);
    const versions = new Set<string>();
    for (let i = 0; i < 20; i++) {
      versions.add((await freshGet(r.port)).text.match(/x-version: (\d)/i)?.[1] ?? "none");
    }
    const after = await perWorker(r);
    expect(versions).toEqual(new Set(["4"]));
    expect(after[0]).toBeGreaterThan(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
    await stop(r);
  });

  it("a reload that fails on a worker leaves both on the old config", async () => {
    const b = backend("one");
    const r = await start(toml([b.url]));
    // The second listener's port is taken by another process: nobody may switch.
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const taken = (blocker.addr as Deno.NetAddr).port;
    try {
      const next = toml(
        [b.url],
        `[[sites]]\nname = "t"\nhostname = "t.test"\nport = ${taken}\nbind = "127.0.0.1"\n` +
          `static_dir = "."\n`,
      );
      const result = await r.reload(next);
      expect(result.ok).toBe(false);
      expect(await r.generation()).toBe(1);
      for (let i = 0; i < 10; i++) expect((await freshGet(r.port)).status).toBe(200);
    } finally {
      blocker.close();
    }
    await stop(r);
  });

  it("a backend killed is seen as down by both workers within one health interval", async () => {
    const a = backend("a");
    const bb = backend("b");
    const r = await start(
      toml(
        [a.url, bb.url],
        `
[sites.proxy.health_check]
enabled = true
path = "/"
interval = 1
timeout = 1
retries = 1

[sites.proxy.passive_health]
enabled = false

[sites.proxy.retry]
attempts = 0
`,
      ),
    );
    for (let i = 0; i < 6; i++) expect((await freshGet(r.port)).status).toBe(200);
    const killed = performance.now();
    await a.close();
    let seenDownAt = 0;
    while (performance.now() - killed < 3000) {
      if (!(await r.upstreams())[0].members[0].live) {
        seenDownAt = performance.now();
        break;
      }
      await sleep(20);
    }
    expect(seenDownAt).toBeGreaterThan(0);
    expect(seenDownAt - killed).toBeLessThan(1000 + 300);
    // Every request from now on, on either worker, goes to the live backend.
    const before = await perWorker(r);
    for (let i = 0; i < 30; i++) {
      const res = await freshGet(r.port);
      expect(res.status).toBe(200);
      expect(res.text).toContain('"id":"b"');
    }
    const after = await perWorker(r);
    expect(after[0]).toBeGreaterThan(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
    await stop(r);
  });

  it("a passive ejection counts failures from both workers", async () => {
    const good = backend("good");
    const r = await start(
      toml(
        [deadAddress(), good.url],
        `
[sites.proxy.passive_health]
max_fails = 4
fail_timeout = 30

[sites.proxy.retry]
attempts = 0
`,
      ),
    );
    const before = await perWorker(r);
    let failures = 0;
    for (let i = 0; i < 60; i++) if ((await freshGet(r.port)).status === 502) failures++;
    const after = await perWorker(r);
    // Each worker alternates dead, good: with a window per worker it would take 4 failures on
    // each before both stopped; with one window, 4 in all.
    expect(after[0]).toBeGreaterThan(before[0] + 4);
    expect(after[1]).toBeGreaterThan(before[1] + 4);
    expect(failures).toBe(4);
    expect((await r.upstreams())[0].members[0]).toMatchObject({ live: false, ejected: true });
    await stop(r);
  });

  it("rate-limit buckets are shared: burst 5 lets 5 of 20 requests through in all", async () => {
    const b = backend("one");
    const r = await start(toml([b.url], `[sites.rate_limit]\nrate = 0.1\nburst = 5\n`));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await freshGet(r.port)).status);
    expect(statuses.filter((s) => s === 200).length).toBe(5);
    expect(statuses.filter((s) => s === 429).length).toBe(15);
    const [w1, w2] = await perWorker(r);
    expect(w1).toBeGreaterThan(0);
    expect(w2).toBeGreaterThan(0);
    await stop(r);
  });

  it("in-flight requests of every worker are counted in one place (least_connections)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    releases.push(release);
    const slow = backend("slow", async () => {
      await gate;
      return new Response("late");
    });
    const r = await start(
      toml([slow.url], `[sites.proxy.load_balancing]\nmethod = "least_connections"\n`),
    );
    // 8 requests, then more one at a time (the kernel picks the worker of each connection) while
    // one worker has none.
    const pending = Array.from({ length: 8 }, () => freshGet(r.port));
    const deadline = Date.now() + 10_000;
    let inFlight = 0;
    let workers = await r.workers();
    while (Date.now() < deadline) {
      inFlight = (await r.upstreams())[0].members[0].inFlight;
      workers = await r.workers();
      if (inFlight === pending.length) {
        if (workers[0].inFlight! > 0 && workers[1].inFlight! > 0) break;
        if (pending.length < 32) pending.push(freshGet(r.port));
      }
      await sleep(20);
    }
    expect(inFlight).toBe(pending.length);
    expect(workers[0].inFlight).toBeGreaterThan(0);
    expect(workers[1].inFlight).toBeGreaterThan(0);
    expect(workers[0].inFlight! + workers[1].inFlight!).toBe(pending.length);
    release();
    expect((await Promise.all(pending)).every((a) => a.status === 200)).toBe(true);
    expect((await r.upstreams())[0].members[0].inFlight).toBe(0);
    await stop(r);
  });

  it("max_connections_per_ip counts a client's connections on every worker", async () => {
    const b = backend("one");
    const r = await start(toml([b.url], "", "[server.limits]\nmax_connections_per_ip = 2\n"));
    const conns = await Promise.all(
      Array.from({ length: 6 }, () => Deno.connect({ hostname: "127.0.0.1", port: r.port })),
    );
    await sleep(200);
    const answers = await Promise.all(conns.map(async (c) => {
      try {
        await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        const buf = new Uint8Array(4096);
        const n = await c.read(buf);
        return n !== null &&
          new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 200");
      } catch {
        return false;
      } finally {
        c.close();
      }
    }));
    expect(answers.filter(Boolean).length).toBe(2);
    await stop(r);
  });

  it("a worker that dies is restarted and logged; only its in-flight requests are lost", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    releases.push(release);
    const b = backend(
      "one",
      (req) =>
        new URL(req.url).pathname === "/slow" ? gate.then(() => new Response("late")) : undefined,
    );
    const r = await start(toml([b.url]));
    for (let i = 0; i < 10; i++) expect((await freshGet(r.port)).status).toBe(200);
    const served = await perWorker(r);
    expect(served[0] + served[1]).toBe(10);
    // Slow requests in flight on both workers: 8, then more one at a time (the kernel picks the
    // worker of each connection) until both have some; then every one of them is in flight.
    const slow = Array.from({ length: 8 }, () => freshGet(r.port, "/slow"));
    const until = Date.now() + 10_000;
    let workers = await r.workers();
    const inFlight = () => workers[0].inFlight! + workers[1].inFlight!;
    while (
      Date.now() < until &&
      !(workers[0].inFlight! > 0 && workers[1].inFlight! > 0 && inFlight() === slow.length)
    ) {
      await sleep(20);
      workers = await r.workers();
      if (inFlight() === slow.length && slow.length < 32) {
        if (workers[0].inFlight === 0 || workers[1].inFlight === 0) {
          slow.push(freshGet(r.port, "/slow"));
        }
      }
    }
    const total = slow.length;
    const lost = workers[0].inFlight!;
    expect(lost).toBeGreaterThan(0);
    expect(workers[1].inFlight).toBe(total - lost);

    await r.fail(1);
    let failures = 0;
    let answered = 0;
    const deadline = Date.now() + 10_000;
    let restarted = false;
    while (Date.now() < deadline) {
      const res = await freshGet(r.port).catch(() => ({ status: 0, text: "" }));
      if (res.status === 200) answered++;
      else failures++;
      const w = (await r.workers())[0];
      if (w.restarts === 1 && w.state === "running") {
        restarted = true;
        break;
      }
    }
    expect(restarted).toBe(true);
    expect(answered).toBeGreaterThan(0);
    // At most a connection the dead thread had accepted is lost.
    expect(failures).toBeLessThanOrEqual(1);
    expect((await r.logs()).some((l) => l.includes("worker died; restarting it"))).toBe(true);
    // The dead worker's requests no longer count as in flight; the other's still do.
    expect((await r.upstreams())[0].members[0].inFlight).toBe(total - lost);
    release();
    const outcomes = await Promise.all(slow);
    expect(outcomes.filter((o) => o.status === 200).length).toBe(total - lost);
    expect((await r.upstreams())[0].members[0].inFlight).toBe(0);

    const before = await perWorker(r);
    for (let i = 0; i < 30; i++) expect((await freshGet(r.port)).status).toBe(200);
    const after = await perWorker(r);
    expect(after[0]).toBeGreaterThan(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
    const m = await r.metrics();
    expect(m.value("bws_worker_restarts_total", { worker: "1" })).toBe(1);
    // What the dead thread had counted is not lost.
    expect(m.value("bws_requests_total", { site: "s", route: "/", code: "2xx" })).toBe(
      10 + answered + (total - lost) + 30,
    );
    await stop(r);
  });
});

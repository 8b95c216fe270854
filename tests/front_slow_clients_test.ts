/**
 * Slow clients against bws's own HTTP/1.1 front end (SPEC 9), driven by slowhttptest against a
 * bws subprocess with 2-second header, body and send timeouts:
 * - slowloris (`-H`): heads that never end;
 * - slow body (`-B`) to a proxy route whose upstream reads the body as it streams: once silent
 *   after the head (the body timeout acts), once trickling until the attacker vanishes;
 * - slow read (`-X`) of a static file and of a proxied download, both larger than what the
 *   kernel queues for a client that does not read (the send timeout acts).
 * Each attack runs on its own port, one after the other, in a warm-up round and three measured
 * rounds.
 *
 * Checked: every attack connection is closed within 2 s of the end of the timeouts that apply to
 * it (a vanished attacker's within 2 s of its leaving), its lifetime sampled from the kernel's
 * socket table (`ss`), plus however late bws was answering ordinary requests at the time (the
 * machine is shared); a keep-alive client on an
 * attacked port and new connections to every port are served throughout; afterwards bws's RSS is
 * within 16 MB of its figure after the warm-up round and its descriptors are back where they were.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { freePort } from "./helpers/pebble.ts";
import {
  type BwsProcess,
  type Child,
  ClosedError,
  fdCountOf,
  getOnce,
  KeepAliveClient,
  rssOf,
  sleep,
  type SocketLife,
  SocketWatch,
  spawnBws,
  waitServing,
  waitUntil,
} from "./helpers/bws_process.ts";
import { spawnRawUpstream, type UpstreamStats } from "./helpers/raw_upstream.ts";

const SLOWHTTPTEST = "/usr/bin/slowhttptest";
const hasTool = await Deno.stat(SLOWHTTPTEST).then(() => true, () => false);
const skip = Deno.build.os !== "linux"
  ? "front slow-client attacks skipped: /proc is Linux-only"
  : hasTool
  ? false
  : `front slow-client attacks skipped: ${SLOWHTTPTEST} is missing (Debian package slowhttptest)`;
if (skip) console.log(skip);

const MiB = 1024 * 1024;
/** The header, body and send timeouts of bws in this test (seconds). */
const TIMEOUT_S = 2;
/**
 * keep_alive (seconds): no attack here waits on it, and the keep-alive client that must be
 * served throughout may sit idle for seconds when the shared machine stalls this process (bws
 * would close its connection, rightly, and the test would blame bws).
 */
const KEEP_ALIVE_S = 10;
/** Connections per slowloris and slow-body attack and round (the figure). */
const CONNECTIONS = 1000;
/**
 * Connections per slow-read attack and round. Loopback lets each socket queue about 1 MiB of
 * unread answer in the kernel (~4 MiB of kernel memory with the attacker's tiny window): 1000
 * of them would push the whole machine into TCP memory pressure, 100 cost ~400 MiB for seconds.
 */
const SLOW_READS = 100;
/** New connections per second of each attack. */
const RATE = 500;
/** Measured rounds after the warm-up one. */
const ROUNDS = 3;
/** Bigger than what the kernel queues for a non-reading client: the send timeout must act. */
const BIG = 3 * MiB;

interface Ports {
  loris: number;
  body: number;
  abort: number;
  readFile: number;
  readProxy: number;
}

function config(ports: Ports, root: string, backend: number): string {
  let toml = `[server]
grace_period = 1

[server.timeouts]
header = ${TIMEOUT_S}
keep_alive = ${KEEP_ALIVE_S}
body = ${TIMEOUT_S}
send = ${TIMEOUT_S}

[logging]
level = "warn"
access_log = false
`;
  for (const [name, port] of Object.entries(ports)) {
    toml += `
[[sites]]
name = "${name}"
hostname = "localhost"
port = ${port}
bind = "127.0.0.1"
static_dir = "${root}"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "b"
url = "http://127.0.0.1:${backend}"

[[sites.proxy.routes]]
path = "/api"
upstream = "b"
`;
  }
  return toml;
}

/** A running slowhttptest. */
interface Run {
  /** Resolves with the time it exited. */
  readonly exited: Promise<number>;
  stop(): void;
}

/** Starts slowhttptest; it is killed after `maxMs` whatever happens. */
function slowhttptest(args: string[], maxMs: number): Run {
  const child = new Deno.Command(SLOWHTTPTEST, {
    args: [...args, "-p", "3", "-v", "0"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  };
  const timer = setTimeout(stop, maxMs);
  const exited = child.status.then(() => {
    clearTimeout(timer);
    return Date.now();
  });
  return { exited, stop };
}

/** How long the normal client waits for an answer before it counts as a failure. */
const ANSWER_MS = 10_000;

/**
 * A keep-alive client alternating a proxied and a static request, and new connections to every
 * port; it records every failure and when each answer came and how long it took (how late bws
 * answers an ordinary request: on a shared machine that lag is added to each timeout's slack).
 */
class NormalClient {
  readonly failures: string[] = [];
  /** Answers: [time it completed, ms it took]. */
  readonly answers: [number, number][] = [];
  served = 0;
  fresh = 0;
  /** Times bws closed the kept-alive connection while it sat idle past keep_alive (the machine
   * stalled the client): it opens a new one, as any client does. */
  reconnects = 0;
  /** Local ports of every keep-alive connection it used (they are not attack connections). */
  readonly localPorts = new Set<number>();
  #pending = new Set<number>();
  #stop = false;
  #loops: Promise<void>[] = [];
  #lastAnswer = Date.now();
  #port = 0;
  client!: KeepAliveClient;

  async start(ports: Ports): Promise<void> {
    this.#port = ports.loris;
    this.client = await KeepAliveClient.open(ports.loris);
    this.localPorts.add(this.client.localPort);
    this.#loops.push(this.#keepAlive(), this.#fresh(ports));
  }

  async #ask(path: string) {
    const idleMs = Date.now() - this.#lastAnswer;
    try {
      return await this.client.request("GET", path);
    } catch (err) {
      // Closed before a byte of the answer after sitting idle past keep_alive (one tick of slack):
      // bws ended an idle connection, it never saw this request. Anything else is a failure.
      if (
        !(err instanceof ClosedError) || !err.beforeAnswer || idleMs < KEEP_ALIVE_S * 1000 - 300
      ) {
        throw err;
      }
      this.reconnects++;
      this.client.close();
      this.client = await KeepAliveClient.open(this.#port);
      this.localPorts.add(this.client.localPort);
      return await this.client.request("GET", path);
    } finally {
      this.#lastAnswer = Date.now();
    }
  }

  /** The slowest answer that completed in [from, to], or is still awaited after `from`. */
  lagDuring(from: number, to: number): number {
    let worst = 0;
    for (const [at, ms] of this.answers) if (at >= from && at <= to) worst = Math.max(worst, ms);
    for (const since of this.#pending) worst = Math.max(worst, Date.now() - Math.max(since, from));
    return worst;
  }

  get slowestMs(): number {
    return Math.max(0, ...this.answers.map(([, ms]) => ms));
  }

  async #timed<T>(what: string, p: Promise<T>): Promise<T | null> {
    const t0 = Date.now();
    this.#pending.add(t0);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), ANSWER_MS)));
    try {
      const got = await Promise.race([p, late]);
      if (got === null) this.failures.push(`${what}: no answer within ${ANSWER_MS} ms`);
      this.answers.push([Date.now(), Date.now() - t0]);
      return got;
    } catch (err) {
      this.failures.push(`${what}: ${err}`);
      return null;
    } finally {
      this.#pending.delete(t0);
      clearTimeout(timer);
    }
  }

  async #keepAlive(): Promise<void> {
    for (let i = 0; !this.#stop; i++) {
      const path = i % 2 === 0 ? `/api/normal${i}` : "/index.html";
      const want = i % 2 === 0 ? `ok /api/normal${i}` : "hello\n";
      const got = await this.#timed(`keep-alive ${path}`, this.#ask(path));
      if (got === null) return; // the connection is broken: reported once
      const body = new TextDecoder().decode(got.body);
      if (got.status !== 200 || body !== want) {
        this.failures.push(`keep-alive ${path}: ${got.status} ${JSON.stringify(body)}`);
      } else this.served++;
      await sleep(100);
    }
  }

  async #fresh(ports: Ports): Promise<void> {
    while (!this.#stop) {
      for (const [name, port] of Object.entries(ports)) {
        const path = name === "readProxy" ? "/api/fresh" : "/index.html";
        const got = await this.#timed(
          `new connection to ${name}`,
          getOnce(port, path, ANSWER_MS + 1000),
        );
        if (got !== null && got.status !== 200) {
          this.failures.push(`new connection to ${name}: ${got.status}`);
        } else if (got !== null) this.fresh++;
      }
      await sleep(400);
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#loops);
    this.client.close();
  }
}

/** One attack of a round: slowhttptest's arguments and how its connections must end. */
interface Attack {
  readonly name: keyof Ports;
  readonly count: number;
  readonly args: string[];
  /** When bws must have closed connection `l` at the latest (`exited`: when slowhttptest quit):
   * 2 s after the timeouts that apply to it have run out, or after its client vanished. */
  readonly closeBy: (l: SocketLife, exited: number) => number;
}

const c = (n: number) => ["-c", `${n}`, "-r", `${RATE}`];
const T = TIMEOUT_S * 1000;
const SLACK = 2000;

/**
 * A round: the attacks of each phase run at once (on their own ports), phase after phase. An
 * attack that must end by a timeout would last 15 s (`-l`) without it; it is stopped once bws has
 * closed all its connections.
 */
const PHASES: readonly (readonly Attack[])[] = [
  [
    // A header line every second: only the header timeout ends it.
    {
      name: "loris",
      count: CONNECTIONS,
      args: ["-H", ...c(CONNECTIONS), "-i", "1", "-l", "15"],
      closeBy: (l) => l.first + T + SLACK,
    },
    // Never reads (its first read would come after 10 s). The send timeout counts from the last
    // bytes the kernel took (it keeps taking a little now and then for a while: that is
    // progress); before any, the head may take up to the header timeout to arrive (slowhttptest
    // sends it from a loop busy with its other connections).
    {
      name: "readFile",
      count: SLOW_READS,
      args: ["-X", ...c(SLOW_READS), "-n", "10", "-l", "15"],
      closeBy: slowReadCloseBy,
    },
    {
      name: "readProxy",
      count: SLOW_READS,
      args: ["-X", ...c(SLOW_READS), "-n", "10", "-l", "15"],
      closeBy: slowReadCloseBy,
    },
  ],
  [
    // The head (header timeout at most), then silence: its first body bytes would come after
    // 10 s, so the body timeout ends it.
    {
      name: "body",
      count: CONNECTIONS,
      args: ["-B", ...c(CONNECTIONS), "-i", "10", "-s", "100000", "-l", "15"],
      closeBy: (l) => l.first + 2 * T + SLACK,
    },
    // A few body bytes every second (within the body timeout) until slowhttptest quits at 5 s.
    {
      name: "abort",
      count: CONNECTIONS,
      args: ["-B", ...c(CONNECTIONS), "-i", "1", "-s", "100000", "-l", "5"],
      closeBy: (_, exited) => exited + SLACK,
    },
  ],
];

function slowReadCloseBy(l: SocketLife): number {
  return (l.progress > l.first ? l.progress : l.first + T) + T + SLACK;
}

const PATHS: Record<keyof Ports, string> = {
  loris: "/index.html",
  body: "/api/upload",
  abort: "/api/upload",
  readFile: "/big.bin",
  readProxy: "/api/big",
};

describe("slow clients (slowhttptest) against a bws subprocess (SPEC 9)", { skip }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_slow_clients_" });
  const ports: Ports = {
    loris: freePort(),
    body: freePort(),
    abort: freePort(),
    readFile: freePort(),
    readProxy: freePort(),
  };
  const upstreamPort = freePort();
  let upstream: Child;
  let bws: BwsProcess;

  before(async () => {
    Deno.mkdirSync(`${dir}/www`);
    Deno.writeTextFileSync(`${dir}/www/index.html`, "hello\n");
    Deno.writeFileSync(`${dir}/www/big.bin`, new Uint8Array(BIG).fill(9));
    upstream = spawnRawUpstream(dir, upstreamPort, BIG);
    bws = spawnBws(dir, config(ports, `${dir}/www`, upstreamPort));
    await waitServing(upstreamPort, "/api/x");
    for (const port of Object.values(ports)) await waitServing(port, "/index.html");
  });

  after(async () => {
    await bws?.stop();
    await upstream?.stop();
    Deno.removeSync(dir, { recursive: true });
  });

  it(`closes every slow connection within its timeout + 2 s, serves others throughout, and RSS returns within 16 MB after ${ROUNDS} rounds`, async () => {
    const stats = async () =>
      JSON.parse((await getOnce(upstreamPort, "/api/stats")).body) as UpstreamStats;
    const baseFds = fdCountOf(bws.pid);
    const watch = new SocketWatch(Object.values(ports));
    const normal = new NormalClient();
    await normal.start(ports);
    const report: string[] = [];
    let baseRss = 0;
    try {
      for (let round = 0; round <= ROUNDS; round++) {
        const t0 = Date.now();
        const before = await stats();
        const found: string[] = [];
        for (const phase of PHASES) {
          await Promise.all(phase.map(async (attack) => {
            const port = ports[attack.name];
            const started = Date.now();
            const url = `http://127.0.0.1:${port}${PATHS[attack.name]}`;
            const run = slowhttptest([...attack.args, "-u", url], 20_000);
            let exited = 0;
            void run.exited.then((t) => (exited = t));
            // Sockets of this attack (the keep-alive client's is not one of them).
            const mine = () =>
              watch.onPort(port).filter((l) =>
                l.first >= started && !normal.localPorts.has(l.remote)
              );
            // Until it quits, or bws has closed all it opened (the watch samples every 200 ms).
            while (exited === 0) {
              await sleep(200);
              const lives = mine();
              const lastAccepted = Math.max(0, ...lives.map((l) => l.first));
              if (
                lives.length >= attack.count * 0.8 && lives.every((l) => !l.open) &&
                Date.now() - lastAccepted > 1000
              ) break;
            }
            run.stop();
            exited = await run.exited;
            // Every connection bws still holds must close by its due time (a late one from the
            // accept queue may appear now).
            const due = (l: SocketLife) =>
              attack.closeBy(l, exited) + Math.min(normal.lagDuring(started, Date.now()), 5000);
            while (true) {
              await watch.sample();
              const open = mine().filter((l) => l.open);
              if (open.every((l) => Date.now() > due(l) + 500)) break;
              await sleep(200);
            }
            const lives = mine();
            const lag = Math.min(normal.lagDuring(started, Date.now()), 5000);
            const late = lives.filter((l) => l.open || l.last > due(l));
            const longest = Math.max(0, ...lives.map((l) => l.last - l.first));
            found.push(
              `${attack.name} ${lives.length} (${late.length} late, longest ${longest} ms, ` +
                `bws answering lag ${lag} ms)`,
            );
            if (late.length > 0) {
              report.push(
                `round ${round}: late ${attack.name} connections (accepted..last seen open, ms ` +
                  `after the attack started): ` +
                  late.slice(0, 10).map((l) => `${l.first - started}..${l.last - started}`).join(
                    " ",
                  ),
              );
            }
            expect({ attack: attack.name, late: late.length }).toEqual({
              attack: attack.name,
              late: 0,
            });
            // The attack happened at about its size (on a loaded machine slowhttptest may not
            // open them all before it quits).
            expect(lives.length).toBeGreaterThan(attack.count * 0.8);
          }));
        }
        const after = await stats();
        report.push(
          `round ${round}: ${((Date.now() - t0) / 1000).toFixed(1)} s; ${found.join(", ")}; ` +
            `upstream saw ${after.uploads - before.uploads} uploads with ` +
            `${after.uploadBytes - before.uploadBytes} bytes; RSS ` +
            `${(rssOf(bws.pid) / MiB).toFixed(1)} MiB`,
        );
        // Trickled bodies reached the upstream as they streamed (~32 bytes a second each).
        expect(after.uploadBytes - before.uploadBytes).toBeGreaterThan(CONNECTIONS * 32);
        expect(normal.failures).toEqual([]);
        if (round === 0) {
          // The warm-up round grew V8's heap and the allocator to their working size; V8 gives
          // back what it does not need some seconds after the load stops.
          baseRss = await settledRss(bws.pid, 15_000);
          report.push(`RSS after the warm-up round: ${(baseRss / MiB).toFixed(1)} MiB`);
        }
      }
      let rss = rssOf(bws.pid);
      await waitUntil("RSS to return near the baseline", 20_000, () => {
        rss = rssOf(bws.pid);
        return rss - baseRss < 16 * MiB;
      }).catch(() => {});
      report.push(
        `after ${ROUNDS} rounds: RSS ${(rss / MiB).toFixed(1)} MiB; keep-alive answers ` +
          `${normal.served} (reconnected after idling ${normal.reconnects} times), new ` +
          `connections ${normal.fresh}, slowest answer ` +
          `${normal.slowestMs.toFixed(0)} ms`,
      );
      expect((rss - baseRss) / MiB).toBeLessThan(16);
    } finally {
      console.log(report.join("\n"));
      watch.stop();
      await normal.stop();
    }
    expect(normal.failures).toEqual([]);
    expect(normal.served).toBeGreaterThan(20);
    // Everything the attacks and the client held is released (pooled upstream sockets close
    // after 4 s idle).
    let fds = Infinity;
    await waitUntil("bws's fds to return to the baseline", 8000, () => {
      fds = fdCountOf(bws.pid);
      return fds <= baseFds;
    }).catch(() => {});
    expect(fds).toBeLessThanOrEqual(baseFds);
  });
});

/** Waits up to `ms` for V8 to shrink the heap after a load; returns the lowest RSS seen once it
 * has stayed within 1 MiB for 2 s after a drop, or the lowest seen at the end. */
async function settledRss(pid: number, ms: number): Promise<number> {
  const start = rssOf(pid);
  let low = start;
  let steadySince = Date.now();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await sleep(250);
    const rss = rssOf(pid);
    if (rss < low - MiB) {
      low = rss;
      steadySince = Date.now();
    } else if (low < start - 8 * MiB && Date.now() - steadySince > 2000) break;
    low = Math.min(low, rss);
  }
  return low;
}

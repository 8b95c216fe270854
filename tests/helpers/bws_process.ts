/**
 * bws (and its test backends) as real subprocesses, for tests that measure what a process holds:
 * resident memory, open descriptors and the lifetime of each client socket, all read from
 * /proc/<pid>. `deno test --parallel` runs several test files in one process, so only a process
 * of its own gives figures that belong to bws.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../cli.ts", import.meta.url));
const MAX_LOG = 1024 * 1024;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every 50 ms until it holds; throws after `ms`. */
export async function waitUntil(what: string, ms: number, ok: () => boolean | Promise<boolean>) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve().then(ok).catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`Cannot wait for ${what}: still false after ${ms} ms`);
}

/** Resident memory of `pid` in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * The resident memory of `pid` sampled every `everyMs` from now until {@link RssPeak.stop}: the
 * figure it started from and the highest one seen.
 */
export class RssPeak {
  readonly base: number;
  readonly #pid: number;
  #peak: number;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(pid: number, everyMs = 20) {
    this.#pid = pid;
    this.base = rssOf(pid);
    this.#peak = this.base;
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    this.#peak = Math.max(this.#peak, rssOf(this.#pid));
  }

  /** Stops sampling after one last sample; the peak, in bytes. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }
}

/** Open descriptors of `pid`. */
export function fdCountOf(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** A TCP connection of this host that a process holds open. */
export interface OpenSocket {
  readonly inode: number;
  readonly local: number;
  readonly remote: number;
  /** Bytes written to it and not yet acknowledged by the peer. */
  readonly sendQueue: number;
}

const hasSs = await new Deno.Command("ss", { args: ["-V"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

/**
 * The IPv4 TCP connections with a local port in `ports` that some process holds open (accepted
 * connections of listeners on those ports). Sockets still in the accept queue or already closed
 * by their process (orphans the kernel still flushes) have no inode and are left out. Uses `ss`
 * (the kernel filters by port and leaves TIME-WAIT out) when present, else /proc/net/tcp.
 */
export async function openSocketsOn(ports: readonly number[]): Promise<OpenSocket[]> {
  const out: OpenSocket[] = [];
  if (hasSs) {
    const filter = ports.map((p) => `sport = :${p}`).join(" or ");
    const res = await new Deno.Command("ss", {
      args: ["-tnHe", "exclude", "time-wait", "exclude", "listening", `( ${filter} )`],
      stdout: "piped",
      stderr: "null",
    }).output();
    for (const line of new TextDecoder().decode(res.stdout).split("\n")) {
      const f = line.trim().split(/\s+/);
      const ino = f.find((x) => x.startsWith("ino:"));
      if (f.length < 5 || ino === undefined || ino === "ino:0") continue;
      out.push({
        inode: Number(ino.slice(4)),
        local: Number(f[3].slice(f[3].lastIndexOf(":") + 1)),
        remote: Number(f[4].slice(f[4].lastIndexOf(":") + 1)),
        sendQueue: Number(f[2]),
      });
    }
    return out;
  }
  const wanted = new Set(ports);
  const text = await Deno.readTextFile("/proc/net/tcp");
  for (const line of text.split("\n").slice(1)) {
    // "sl: AAAAAAAA:PPPP BBBBBBBB:QQQQ st tx:rx tr:when retr uid timeout inode ..."
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = parseInt(f[1].split(":")[1], 16);
    const inode = Number(f[9]);
    if (!wanted.has(local) || inode === 0 || f[3] === "0A") continue;
    out.push({
      inode,
      local,
      remote: parseInt(f[2].split(":")[1], 16),
      sendQueue: parseInt(f[4].split(":")[0], 16),
    });
  }
  return out;
}

/** Lifetime of one accepted connection, as seen by a {@link SocketWatch}. */
export interface SocketLife extends OpenSocket {
  readonly first: number;
  last: number;
  /** When its send queue was last seen to change (`first` if it never did): the last time the
   * process handed the kernel bytes for it, or the peer took some. */
  progress: number;
  sendQueue: number;
  /** Still open at the last sample. */
  open: boolean;
}

/**
 * Samples the connections accepted on `ports` every `everyMs` and records when each was first
 * and last seen open: a lifetime is measured short by two sampling intervals at most.
 */
export class SocketWatch {
  readonly lives = new Map<number, SocketLife>();
  readonly #ports: number[];
  readonly #timer: ReturnType<typeof setInterval>;
  #sampling: Promise<void> | null = null;

  constructor(ports: number[], everyMs = 200) {
    this.#ports = ports;
    this.#timer = setInterval(() => void this.sample(), everyMs);
  }

  /** Takes a sample (or waits for the one under way). */
  sample(): Promise<void> {
    return this.#sampling ??= this.#sample().finally(() => (this.#sampling = null));
  }

  async #sample(): Promise<void> {
    // The snapshot is taken somewhere between these two times: a socket was open at least from
    // the `after` of its first sample to the `before` of its last (a lifetime never comes out
    // longer than it was, however slow the sampling).
    const before = Date.now();
    const sockets = await openSocketsOn(this.#ports);
    const after = Date.now();
    const seen = new Set<number>();
    for (const s of sockets) {
      seen.add(s.inode);
      const life = this.lives.get(s.inode);
      if (life === undefined) {
        this.lives.set(s.inode, { ...s, first: after, last: after, progress: after, open: true });
        continue;
      }
      life.last = Math.max(life.last, before);
      if (s.sendQueue !== life.sendQueue) {
        life.sendQueue = s.sendQueue;
        life.progress = after;
      }
    }
    for (const life of this.lives.values()) {
      if (life.open && !seen.has(life.inode)) life.open = false;
    }
  }

  /** Connections accepted on `port`. */
  onPort(port: number): SocketLife[] {
    return [...this.lives.values()].filter((l) => l.local === port);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** A process started by this module. */
export interface Child {
  readonly pid: number;
  /** What it wrote to stdout and stderr so far (the last MiB). */
  output(): string;
  /** SIGTERM, then SIGKILL after `ms`; resolves once it has exited. */
  stop(ms?: number): Promise<void>;
  readonly exited: Promise<Deno.CommandStatus>;
}

function spawn(cmd: string, args: string[]): Child {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    // Read continuously: a full pipe would block the child's logging.
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.length > MAX_LOG) text = text.slice(-MAX_LOG);
    }
  };
  const collected = Promise.all([collect(child.stdout), collect(child.stderr)]).catch(() => {});
  const exited = child.status;
  return {
    pid: child.pid,
    output: () => text,
    exited,
    async stop(ms = 5000) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, ms);
      await exited;
      clearTimeout(timer);
      await collected;
    },
  };
}

/** Options of {@link spawnBws}. */
export interface SpawnBwsOptions {
  /** Runs bws under `ulimit -n <fds>` (through bash). */
  fdLimit?: number;
}

/** A bws subprocess and the directory holding its configuration. */
export interface BwsProcess extends Child {
  readonly dir: string;
}

/** Starts `deno run -A --v8-flags=--expose-gc cli.ts -c <dir>/bws.toml`, as the binary runs. */
export function spawnBws(dir: string, toml: string, opts: SpawnBwsOptions = {}): BwsProcess {
  const file = `${dir}/bws.toml`;
  Deno.writeTextFileSync(file, toml);
  const deno = [Deno.execPath(), "run", "-A", "--v8-flags=--expose-gc", CLI, "-c", file];
  const child = opts.fdLimit === undefined
    ? spawn(deno[0], deno.slice(1))
    // `exec` keeps the pid: /proc/<pid> is bws's own.
    : spawn("bash", ["-c", `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, ...deno]);
  return { ...child, dir };
}

/** Runs a TypeScript program (a test backend) in its own process. */
export function spawnScript(dir: string, name: string, code: string, args: string[]): Child {
  const file = `${dir}/${name}`;
  Deno.writeTextFileSync(file, code);
  return spawn(Deno.execPath(), ["run", "-A", "--no-config", file, ...args]);
}

/** Answers a plain GET with `Connection: close` on a new connection: status and body. */
export async function getOnce(
  port: number,
  path: string,
  ms = 2000,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => closeQuietly(conn), ms);
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) throw new Error(`Cannot GET "${path}": no answer`);
    return { status: Number(text.slice(9, 12)), body: text.slice(end + 4) };
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Polls `getOnce(port, path)` until it answers 200 (bws started). */
export async function waitServing(port: number, path: string, ms = 20_000): Promise<void> {
  await waitUntil(`port ${port} to serve ${path}`, ms, async () => {
    return (await getOnce(port, path, 1000)).status === 200;
  });
}

export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** One answer read by {@link KeepAliveClient}. */
export interface Answer {
  readonly status: number;
  readonly head: string;
  readonly body: Uint8Array;
}

const CRLFCRLF = [13, 10, 13, 10];

/** The connection closed while an answer was awaited. */
export class ClosedError extends Error {
  /** Not a byte of the answer had come (the server closed an idle connection). */
  readonly beforeAnswer: boolean;

  constructor(beforeAnswer: boolean) {
    super(
      `Cannot read the answer: the connection was closed${
        beforeAnswer ? " before it" : " mid-way"
      }`,
    );
    this.beforeAnswer = beforeAnswer;
  }
}

/**
 * An HTTP/1.1 client on one kept-alive connection, reading answers framed by Content-Length or
 * chunked encoding. It throws when the connection closes before an answer is complete.
 */
export class KeepAliveClient {
  #buf = new Uint8Array(0);
  /** Bytes of the current answer arrived. */
  #partial = false;
  readonly #scratch = new Uint8Array(64 * 1024);
  private constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number): Promise<KeepAliveClient> {
    return new KeepAliveClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** The local port of the connection (the remote port bws sees). */
  get localPort(): number {
    return (this.conn.localAddr as Deno.NetAddr).port;
  }

  async request(method: string, path: string, headers = "", body = ""): Promise<Answer> {
    const length = body.length > 0 || method === "POST" ? `Content-Length: ${body.length}\r\n` : "";
    await this.send(
      `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}${length}\r\n${body}`,
    );
    return await this.answer(method === "HEAD");
  }

  async send(raw: string): Promise<void> {
    const bytes = new TextEncoder().encode(raw);
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads one answer. */
  async answer(noBody = false): Promise<Answer> {
    this.#partial = false;
    let end: number;
    while ((end = indexOf(this.#buf, CRLFCRLF)) < 0) await this.#more();
    const head = new TextDecoder().decode(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(end + 4);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (noBody || status === 204 || status === 304 || status < 200) {
      return { status, head, body: new Uint8Array(0) };
    }
    if (length !== null) {
      const n = Number(length[1]);
      while (this.#buf.length < n) await this.#more();
      const body = this.#buf.slice(0, n);
      this.#buf = this.#buf.subarray(n);
      return { status, head, body };
    }
    if (!/\r\ntransfer-encoding: *chunked/i.test(head)) {
      throw new Error(`Cannot read an answer without framing: ${head.split("\r\n")[0]}`);
    }
    const parts: Uint8Array[] = [];
    while (true) {
      let eol: number;
      while ((eol = indexOf(this.#buf, [13, 10])) < 0) await this.#more();
      const size = parseInt(new TextDecoder().decode(this.#buf.subarray(0, eol)), 16);
      while (this.#buf.length < eol + 2 + size + 2) await this.#more();
      parts.push(this.#buf.slice(eol + 2, eol + 2 + size));
      this.#buf = this.#buf.subarray(eol + 2 + size + 2);
      if (size === 0) break;
    }
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      body.set(p, o);
      o += p.length;
    }
    return { status, head, body };
  }

  async #more(): Promise<void> {
    const n = await this.conn.read(this.#scratch).catch(() => null);
    if (n === null) {
      throw new ClosedError(this.#buf.length === 0 && !this.#partial);
    }
    this.#partial = true;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(this.#scratch.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }

  close(): void {
    closeQuietly(this.conn);
  }
}

function indexOf(hay: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

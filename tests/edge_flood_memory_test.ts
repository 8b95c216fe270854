/**
 * A flood of 200 000 requests, each from a different client address (X-Forwarded-For through a
 * trusted peer), against a rate-limited site: bws (its own process, as the compiled binary runs)
 * must keep its memory bounded, since every new address is a new bucket. The limit is slow
 * (one request per 100 s) so no bucket refills during the flood: only the store's key cap keeps
 * it bounded. A flood of half as many against a site whose buckets refill at once warms bws up
 * first. The requests match no route (bws answers 404 itself once the rate limit let them
 * through): what is measured is the rate limit, not an upstream.
 *
 * The load comes from a process of its own too (`deno test --parallel` shares this one with
 * other test files), pipelined over a few keep-alive connections at a pace that leaves CPU to
 * the test files running beside this one.
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { RssPeak, spawnBws, waitUntil } from "./helpers/bws_process.ts";
import { freePort } from "./helpers/pebble.ts";

const MiB = 1024 * 1024;
const TOTAL = 200_000;
/**
 * Requests per second at most: bws serves ~30 000 a second here, but a flood at full speed
 * starves the test files running beside this one (a churn soak's time-bounded counts).
 */
const PACE = 12_000;
/** The flood must finish within this, whatever the machine's load. */
const DEADLINE_MS = 150_000;

/**
 * The load generator: `port host from to pace deadline` sends requests `from` .. `to` - 1 to
 * `host`, request i from X-Forwarded-For 10.x.y.z (i in base 256), plus once more the first
 * address of each batch of 100; 4 connections; prints {sent, responses, limited}. Responses
 * are counted without decoding: heads end with CRLFCRLF and the short bodies bws sends here
 * hold none; a 429 status line is matched the same way.
 */
const LOAD = `
const [portText, host, fromText, toText, paceText, deadlineText] = Deno.args;
const [port, from, to, pace, deadline] = [portText, fromText, toText, paceText, deadlineText].map(Number);
const CONNECTIONS = 4;
const BATCH = 100;
const enc = new TextEncoder();
const address = (i) => "10." + ((i >> 16) & 255) + "." + ((i >> 8) & 255) + "." + (i & 255);
const request = (i) => "GET /flood HTTP/1.1\\r\\nHost: " + host + "\\r\\nX-Forwarded-For: " + address(i) + "\\r\\n\\r\\n";
const HEAD_END = [13, 10, 13, 10];
const LIMITED = [...enc.encode("HTTP/1.1 429 ")];
let next = from;
const total = { sent: 0, responses: 0, limited: 0 };
const t0 = performance.now();
async function worker() {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(64 * 1024);
  try {
    while (next < to && Date.now() < deadline) {
      const start = next;
      const end = Math.min(to, start + BATCH);
      next = end;
      let text = "";
      for (let i = start; i < end; i++) text += request(i);
      text += request(start); // over its limit on the limited site
      const want = end - start + 1;
      total.sent += want;
      const due = t0 + (total.sent / pace) * 1000;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      await conn.write(enc.encode(text));
      let got = 0, endState = 0, limitState = 0;
      while (got < want) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("bws closed a flood connection");
        for (let i = 0; i < n; i++) {
          const c = buf[i];
          endState = c === HEAD_END[endState] ? endState + 1 : c === 13 ? 1 : 0;
          if (endState === 4) { got++; endState = 0; }
          limitState = c === LIMITED[limitState] ? limitState + 1 : c === 72 ? 1 : 0;
          if (limitState === LIMITED.length) { total.limited++; limitState = 0; }
        }
      }
      total.responses += got;
    }
  } finally {
    conn.close();
  }
}
await Promise.all(Array.from({ length: CONNECTIONS }, worker));
console.log(JSON.stringify(total));
`;

/** One site: a slow or an instant rate limit, and a route nobody asks for. */
function site(name: string, hostname: string, port: number, rateLimit: string): string {
  return `
[[sites]]
name = "${name}"
hostname = "${hostname}"
port = ${port}
bind = "127.0.0.1"

[sites.rate_limit]
${rateLimit}

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "app"
url = "http://127.0.0.1:9"

[[sites.proxy.routes]]
path = "/app/"
upstream = "app"
`;
}

describe("a flood of distinct client addresses", { skip: Deno.build.os !== "linux" }, () => {
  const dir = Deno.makeTempDirSync({ prefix: "bws_flood_" });
  const port = freePort();
  Deno.writeTextFileSync(`${dir}/load.js`, LOAD);
  const bws = spawnBws(
    dir,
    `[server]
trusted_proxies = ["127.0.0.1"]

[logging]
level = "warn"
access_log = false
` + site("flood", "localhost", port, "rate = 0.01\nburst = 1") +
      site("warm", "warm.test", port, "rate = 1000000\nburst = 1000000"),
  );
  after(async () => {
    await bws.stop();
    Deno.removeSync(dir, { recursive: true });
  });

  /** bws answers (404: no route matches) once it has started. */
  async function ready(): Promise<void> {
    await waitUntil("bws to answer", 15_000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      await r.arrayBuffer();
      return r.status === 404;
    });
  }

  async function flood(host: string, from: number, to: number, deadline: number) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-config",
        `${dir}/load.js`,
        ...[port, host, from, to, PACE, deadline].map(String),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`Cannot flood ${host}: ${err}`);
    return JSON.parse(new TextDecoder().decode(out.stdout)) as {
      sent: number;
      responses: number;
      limited: number;
    };
  }

  it(`keeps RSS growth under 32 MB over ${TOTAL} new addresses`, async () => {
    await ready();
    const started = Date.now();
    const deadline = started + DEADLINE_MS;
    // Warm-up: the same flood on a site whose limit forgets every bucket within a millisecond:
    // code compiled, the heap at its working size under this load. What the measured flood adds
    // is what its remembered addresses cost.
    const warm = await flood("warm.test", TOTAL, TOTAL + 100_000, deadline);
    expect(warm).toMatchObject({ responses: warm.sent, limited: 0 });
    await new Promise((r) => setTimeout(r, 300));
    const rss = new RssPeak(bws.pid, 50);
    const base = rss.base;
    let peak = base;
    let result;
    try {
      result = await flood("localhost", 0, TOTAL, deadline);
    } finally {
      peak = rss.stop();
    }
    const batches = Math.ceil(TOTAL / 100);
    // Every request answered: each new address passes once, its batch's repeat is limited.
    expect(result.sent).toBe(TOTAL + batches);
    expect(result.responses).toBe(result.sent);
    expect(result.limited).toBe(batches);
    console.log(
      `flood: ${TOTAL} addresses in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `(with warm-up), RSS ${(base / MiB).toFixed(1)} -> peak ${(peak / MiB).toFixed(1)} MiB`,
    );
    expect((peak - base) / MiB).toBeLessThan(32);
  });
});

import { after, before, describe, it } from "node:test";
import { expect } from "expect";

// Active checks of https upstreams trust the CA named by DENO_CERT, like every Deno fetch. The
// variable is read at process start, so each case runs the checker in a child process.

const groupUrl = new URL("../src/balancer/group.ts", import.meta.url).href;
const registryUrl = new URL("../src/health/registry.ts", import.meta.url).href;

const CHILD = `
import { UpstreamGroup } from "${groupUrl}";
import { HostRegistry } from "${registryUrl}";
const g = new UpstreamGroup({
  site: "s", name: "g", upstreams: [{ name: "g", url: Deno.args[0], weight: 1 }],
  method: "round_robin",
  healthCheck: { enabled: true, path: "/health", intervalMs: 50, timeoutMs: 2000, retries: 1, rise: 1,
    expectStatus: "2xx" },
  passiveHealth: { enabled: true, maxFails: 3, failTimeoutMs: 10_000 },
  registry: new HostRegistry(),
});
g.start();
await new Promise((r) => setTimeout(r, 400));
await g.stop();
const m = g.snapshot().members[0];
console.log(JSON.stringify({ activeUp: m.activeUp, lastError: m.lastError }));
`;

describe("active health checks over https", () => {
  let dir = "";
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let hits = 0;

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_health_tls_" });
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!gen.success) throw new Error("Cannot create a test certificate: openssl failed");
    await Deno.writeTextFile(`${dir}/child.ts`, CHILD);
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
      onListen: () => {},
    }, () => {
      hits++;
      return new Response("ok");
    });
  });

  after(async () => {
    await server?.shutdown();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function runChild(env: Record<string, string>) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${dir}/child.ts`, `https://localhost:${server!.addr.port}`],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return JSON.parse(text.split("\n").at(-1)!) as { activeUp: boolean; lastError: string };
  }

  it("passes when DENO_CERT names the upstream's CA", async () => {
    const before = hits;
    const r = await runChild({ DENO_CERT: `${dir}/cert.pem` });
    expect(r).toEqual({ activeUp: true, lastError: "" });
    expect(hits).toBeGreaterThan(before);
  });

  it("fails (member down) when the certificate is not trusted", async () => {
    const r = await runChild({});
    expect(r.activeUp).toBe(false);
    expect(r.lastError).toMatch(/health check failed: .*certificate/);
  });
});

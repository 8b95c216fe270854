/**
 * The benchmark's HTTPS rows: bws with one certificate on the port and with two certificates
 * chosen by SNI (both through `node:tls`, see src/tls/README.md), each beside nginx with the same
 * certificates (same per-request work), plus bare nginx on one certificate. wrk keeps its
 * connections alive over TLS, so the rows measure record encryption and the request path, not
 * handshakes.
 *
 * @module
 */

import { type BenchCerts, makeBenchCerts } from "./bench_certs.ts";
import {
  BENCH_HOST,
  type BenchTls,
  nginxProxyConf,
  nginxSameWorkConf,
  TLS_NAME,
} from "./configs.ts";
import { describeRound, type LoadOptions, measureInTurns, type RowTarget } from "./measure.ts";
import { freePort, type Service, type ServiceSet, waitReady } from "./process.ts";
import { type BenchContext, startBws, startNginx } from "./proxies.ts";
import { HTTPS_ROWS, type Row } from "./report.ts";

/** One HTTPS server under test. */
interface HttpsSpec {
  readonly name: string;
  /** The plain-HTTP row it corresponds to (what `--only` selects by). */
  readonly family: "bws" | "nginx" | "nginx-same-work";
  /** Which certificates: one for both sites, or one per site (SNI). */
  readonly certs: "one" | "sni";
  start(ctx: BenchContext, port: number, tls: BenchTls, nginxPath: string): Promise<Service>;
}

const SPECS: readonly HttpsSpec[] = [
  {
    name: HTTPS_ROWS.bwsOne,
    family: "bws",
    certs: "one",
    start: (ctx, port, tls) => startBws(ctx, port, HTTPS_ROWS.bwsOne, tls),
  },
  {
    name: HTTPS_ROWS.bwsSni,
    family: "bws",
    certs: "sni",
    start: (ctx, port, tls) => startBws(ctx, port, HTTPS_ROWS.bwsSni, tls),
  },
  {
    name: HTTPS_ROWS.nginxOne,
    family: "nginx",
    certs: "one",
    start: (ctx, port, tls, nginx) =>
      startNginx(
        ctx,
        HTTPS_ROWS.nginxOne,
        nginx,
        (dir) => nginxProxyConf(dir, port, ctx.backendPort, tls),
      ),
  },
  {
    name: HTTPS_ROWS.sameWorkOne,
    family: "nginx-same-work",
    certs: "one",
    start: (ctx, port, tls, nginx) =>
      startNginx(
        ctx,
        HTTPS_ROWS.sameWorkOne,
        nginx,
        (dir) => nginxSameWorkConf(dir, port, ctx.backendPort, tls),
      ),
  },
  {
    name: HTTPS_ROWS.sameWorkSni,
    family: "nginx-same-work",
    certs: "sni",
    start: (ctx, port, tls, nginx) =>
      startNginx(
        ctx,
        HTTPS_ROWS.sameWorkSni,
        nginx,
        (dir) => nginxSameWorkConf(dir, port, ctx.backendPort, tls),
      ),
  },
];

/** Options of {@linkcode runHttpsRows}. */
export interface HttpsRowsOptions {
  readonly ctx: BenchContext;
  readonly services: ServiceSet;
  readonly load: LoadOptions;
  /** Path of nginx; its rows are skipped when undefined. */
  readonly nginxPath?: string;
  /** Plain-row names to keep (`--only`); HTTPS rows are kept by their family. */
  readonly only?: readonly string[];
}

/** What the HTTPS rows produced. */
export interface HttpsResult {
  readonly rows: Row[];
  /** One line per server: its negotiated TLS version and cipher, or why it failed. */
  readonly notes: string[];
}

/** The TLS version and cipher `openssl s_client` negotiates with `port` for `TLS_NAME`. */
async function negotiated(port: number): Promise<string> {
  try {
    const out = await new Deno.Command("openssl", {
      args: ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", TLS_NAME, "-brief"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(5000),
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    const version = /Protocol version: (\S+)/.exec(text)?.[1];
    const cipher = /Ciphersuite: (\S+)/.exec(text)?.[1];
    return version && cipher ? `${version} ${cipher}` : "TLS parameters unknown";
  } catch {
    return "TLS parameters unknown";
  }
}

/** Makes the certificates, starts every HTTPS server, measures them in turns, stops them. */
export async function runHttpsRows(o: HttpsRowsOptions): Promise<HttpsResult> {
  const notes: string[] = [];
  const specs = SPECS.filter((s) =>
    (!o.only || o.only.includes(s.family)) && (s.family === "bws" || o.nginxPath)
  );
  if (specs.length === 0) return { rows: [], notes };
  let certs: BenchCerts;
  try {
    certs = await makeBenchCerts();
  } catch (error) {
    return { rows: [], notes: [`https: skipped: ${(error as Error).message}`] };
  }
  const client = Deno.createHttpClient({ caCerts: [certs.caPem] });
  const running: { target: RowTarget; port: number }[] = [];
  try {
    for (const spec of specs) {
      const port = freePort();
      const url = `https://${TLS_NAME}:${port}/api/bench`;
      const headers = { Host: BENCH_HOST };
      let service: Service | undefined;
      try {
        service = await o.services.track(
          spec.start(o.ctx, port, certs[spec.certs], o.nginxPath ?? "nginx"),
        );
        await waitReady(service, url, headers, 30_000, client);
        const body = await (await fetch(url, { headers, client })).text();
        if (body !== "hello world\n") {
          throw new Error(
            `Cannot benchmark "${spec.name}": unexpected body ${JSON.stringify(body)}`,
          );
        }
        const target = { name: spec.name, service, url, headers, peakRss: spec.family === "bws" };
        running.push({ target, port });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        notes.push(`${spec.name}: FAILED: ${message.split("\n")[0]}`);
        console.error(message);
        if (service) await o.services.stop(service);
      }
    }
    for (const { target, port } of running) {
      notes.push(`${target.name}: ${await negotiated(port)}`);
    }
    const { rows, failures } = await measureInTurns(
      running.map((r) => r.target),
      o.load,
      (round, cpu) => console.log(describeRound(round, cpu)),
    );
    for (const [name, message] of failures) notes.push(`${name}: FAILED: ${message}`);
    return { rows, notes };
  } finally {
    for (const { target } of running) await o.services.stop(target.service);
    client.close();
    await certs.remove();
  }
}

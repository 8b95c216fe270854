/** https upstreams: a self-signed certificate made with openssl, trusted through caCerts. */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { UpstreamClient, type UpstreamRequest } from "../src/upstream/client.ts";
import { UpstreamError } from "../src/upstream/errors.ts";
import { parseUpstreamUrl } from "../src/upstream/target.ts";

function req(): UpstreamRequest {
  return {
    method: "GET",
    target: "/secure?x=1",
    headers: [["Host", "localhost"]],
    body: null,
    bodyLength: null,
    timeouts: { connectMs: 3000, readMs: 3000, writeMs: 3000 },
  };
}

describe("UpstreamClient over TLS", () => {
  let dir = "";
  let cert = "";
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  const clients: UpstreamClient[] = [];

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws-upstream-tls-" });
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        // openssl marks -x509 certificates CA:TRUE, which rustls refuses as a server certificate.
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    cert = await Deno.readTextFile(`${dir}/cert.pem`);
    const key = await Deno.readTextFile(`${dir}/key.pem`);
    server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
      (r) => {
        const u = new URL(r.url);
        return new Response(`tls ${u.pathname}${u.search}`);
      },
    );
  });
  after(async () => {
    for (const c of clients) c.close();
    await server?.shutdown();
    await Deno.remove(dir, { recursive: true });
  });

  for (const host of ["localhost", "127.0.0.1"]) {
    it(`talks HTTPS to ${host} with the CA from caCerts and reuses the connection`, async () => {
      const client = new UpstreamClient({ caCerts: [cert] });
      clients.push(client);
      const target = parseUpstreamUrl(`https://${host}:${server!.addr.port}`);
      for (let i = 0; i < 3; i++) {
        const res = await client.request(target, req());
        expect(res.status).toBe(200);
        expect(res.reused).toBe(i > 0);
        expect(await new Response(res.body).text()).toBe("tls /secure?x=1");
      }
      expect(client.stats()).toEqual([{ origin: target.origin, idle: 1, busy: 0 }]);
    });
  }

  it('fails with kind "tls" (dial) when the certificate is not trusted', async () => {
    const client = new UpstreamClient();
    clients.push(client);
    const target = parseUpstreamUrl(`https://localhost:${server!.addr.port}`);
    const err = await client.request(target, req()).catch((e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe("tls");
    expect(err.dial).toBe(true);
  });

  it('fails with kind "tls" when the upstream does not speak TLS', async () => {
    const plain = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("x"),
    );
    try {
      const client = new UpstreamClient({ caCerts: [cert] });
      clients.push(client);
      const err = await client.request(
        parseUpstreamUrl(`https://localhost:${plain.addr.port}`),
        req(),
      ).catch((e) => e);
      expect(err.kind).toBe("tls");
    } finally {
      await plain.shutdown();
    }
  });
});

/**
 * HTTP/2 on a plain port by prior knowledge (h2c): bws sees the `PRI * HTTP/2.0` preface and
 * hands the connection to its HTTP/2 bridge, whose requests reach the same handler as HTTP/1.1.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { type Backend, startEchoBackend } from "./helpers/backends.ts";
import { proxySite, startBws, type TestBws } from "./helpers/bws.ts";

const hasCurl = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

describe(
  "HTTP/2 by prior knowledge on a plain port",
  { skip: hasCurl ? false : "curl missing" },
  () => {
    let backend: Backend;
    let bws: TestBws;

    before(async () => {
      backend = startEchoBackend("h2c");
      bws = await startBws(proxySite([backend.url], `\n[sites.headers]\n"X-Site" = "on"\n`));
    });

    after(async () => {
      await bws.close();
      await backend.close();
    });

    it("serves h2c requests through the same handler: routing, headers, body, access log", async () => {
      const out = await new Deno.Command("curl", {
        args: [
          "-sS",
          "-i",
          "--http2-prior-knowledge",
          "--max-time",
          "10",
          "-H",
          "Host: localhost",
          "--data-binary",
          "hello",
          bws.url("/h2/path?q=1"),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      expect(text).toMatch(/^HTTP\/2 200/);
      expect(text).toMatch(/\r\nx-site: on\r\n/i);
      const seen = backend.seen.at(-1)!;
      expect([seen.method, seen.path, seen.bodyLength]).toEqual(["POST", "/h2/path?q=1", 5]);
      expect(seen.headers).toContainEqual(["x-forwarded-proto", "http"]);
      await new Promise((r) => setTimeout(r, 50));
      const entry = bws.logger.entries.find((e) => e.path === "/h2/path?q=1");
      expect(entry?.status).toBe(200);
      expect(entry?.site).toBe("s");
    });
  },
);

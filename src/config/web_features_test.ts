/**
 * The web-server keys (docs/behaviour.md "Web-server features"): `[sites.compression]`,
 * `[[sites.redirects]]`, `spa_fallback` and `[sites.error_pages]` (read from real files).
 */
import { after, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { parseConfigText, parseConfigTextWithWarnings } from "./load.ts";
import { MAX_ERROR_PAGE_BYTES } from "./error_page_files.ts";
import { ConfigError, type ConfigIssue } from "./types.ts";

const dir = Deno.makeTempDirSync({ prefix: "bws_web_features_" });
after(() => Deno.removeSync(dir, { recursive: true }));
Deno.mkdirSync(join(dir, "public/app"), { recursive: true });
Deno.mkdirSync(join(dir, "errors"));
Deno.writeTextFileSync(join(dir, "public/app/index.html"), "<h1>app</h1>");
Deno.writeTextFileSync(join(dir, "errors/404.html"), "<h1>not here</h1>");
Deno.writeFileSync(join(dir, "errors/5xx.html"), new Uint8Array([0x3c, 0xff, 0x00, 0x3e]));

const load = (text: string) => parseConfigText(text, { file: "bws.toml", baseDir: dir });

const SITE = `[[sites]]
name = "main"
hostname = "example.com"
port = 8080
static_dir = "public"
`;

function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("config was accepted");
}

const messages = (text: string) => issuesOf(text).map((i) => `${i.line}: ${i.path}: ${i.message}`);

describe("[sites.compression]", () => {
  it("defaults to static on, proxy off, zstd/br/gzip, 1024 bytes and the documented types", () => {
    expect(load(SITE).sites[0].compression).toEqual({
      static: true,
      proxy: false,
      algorithms: ["zstd", "br", "gzip"],
      minSize: 1024,
      types: [
        "text/*",
        "application/json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
      ],
    });
  });

  it("takes a subset of algorithms in any order, sizes with units and type ranges", () => {
    const c = load(`${SITE}[sites.compression]
proxy = true
algorithms = ["GZIP", "br"]
min_size = "2KiB"
types = ["Text/HTML", "application/*", "*/*"]
`).sites[0].compression;
    expect(c).toMatchObject({
      proxy: true,
      algorithms: ["gzip", "br"],
      minSize: 2048,
      types: ["text/html", "application/*", "*/*"],
    });
  });

  it("rejects unknown or repeated algorithms and malformed types, naming each", () => {
    expect(messages(`${SITE}[sites.compression]
algorithms = ["zstd", "deflate", "zstd"]
types = ["text", "text/html; charset=utf-8", "*/json"]
min_size = -1
`)).toEqual([
      '7: sites[0].compression.algorithms[1]: Cannot use algorithm "deflate": expected one of ' +
      "zstd, br, gzip",
      '8: sites[0].compression.types[0]: Cannot use type "text": expected a media type like ' +
      '"application/json", or a range like "text/*", without parameters',
      '8: sites[0].compression.types[1]: Cannot use type "text/html; charset=utf-8": expected a ' +
      'media type like "application/json", or a range like "text/*", without parameters',
      '8: sites[0].compression.types[2]: Cannot use type "*/json": expected a media type like ' +
      '"application/json", or a range like "text/*", without parameters',
      "9: sites[0].compression.min_size: Cannot use size -1: expected a whole number of bytes ≥ 0",
    ]);
    expect(messages(`${SITE}[sites.compression]\nalgorithms = ["br", "br"]\n`)).toEqual([
      '7: sites[0].compression.algorithms: "br" is listed twice',
    ]);
  });
});

describe("[[sites.redirects]]", () => {
  it("defaults to 308 with keep_path, and makes a site without content valid", () => {
    const c = load(`[[sites]]
name = "www"
hostname = "www.example.com"
port = 8080

[[sites.redirects]]
path = "/"
to = "https://example.com/"

[[sites.redirects]]
path = "/old"
to = "/new?from=old"
status = 302
keep_path = false
`);
    expect(c.sites[0].redirects).toEqual([
      { path: "/", to: "https://example.com/", status: 308, keepPath: true },
      { path: "/old", to: "/new?from=old", status: 302, keepPath: false },
    ]);
  });

  it("rejects other statuses, bad targets and duplicate paths", () => {
    const redirect = (fields: string) => `${SITE}[[sites.redirects]]\n${fields}\n`;
    expect(messages(redirect('path = "/a"\nto = "/b"\nstatus = 300'))).toEqual([
      "9: sites[0].redirects[0].status: Cannot use status 300: expected one of 301, 302, 303, " +
      "307, 308",
    ]);
    const target = (to: string) => messages(redirect(`path = "/a"\nto = "${to}"`))[0];
    expect(target("//evil.example")).toContain(
      'Cannot redirect to "//evil.example": a path must not start with "//"',
    );
    expect(target("ftp://files.example/")).toContain(
      'expected an absolute http(s) URL or a path starting with "/"',
    );
    expect(target("new-page")).toContain("expected an absolute http(s) URL");
    expect(target("https:///x")).toContain("expected an absolute http(s) URL");
    expect(target("/a b")).toContain("contains spaces, control or non-ASCII characters");
    expect(messages(redirect('to = "/b"'))).toEqual([
      "6: sites[0].redirects[0].path: missing required key `path`",
    ]);
    expect(messages(redirect('path = "b"\nto = "/b"'))).toEqual([
      '7: sites[0].redirects[0].path: Cannot use path "b": must start with "/"',
    ]);
    expect(
      messages(
        `${SITE}[[sites.redirects]]\npath = "/a"\nto = "/b"\n` +
          `[[sites.redirects]]\npath = "/a"\nto = "/c"\n`,
      ),
    ).toEqual([
      '10: sites[0].redirects[1].path: duplicate redirect path "/a" (also ' +
      "sites[0].redirects[0].path)",
    ]);
  });

  it("rejects a redirect whose target it matches itself", () => {
    const loop = (path: string, to: string) =>
      messages(`${SITE}[[sites.redirects]]\npath = "${path}"\nto = "${to}"\n`);
    expect(loop("/old/", "/old/new")[0]).toContain(
      'Cannot redirect "/old/" to "/old/new": the target is matched by the same redirect',
    );
    expect(loop("/", "http://example.com:8080/?x")[0]).toContain("(a loop)");
    // another host, scheme or port is not this site
    expect(() => load(`${SITE}[[sites.redirects]]\npath = "/"\nto = "https://example.com/"\n`))
      .not.toThrow();
    expect(() => load(`${SITE}[[sites.redirects]]\npath = "/"\nto = "http://example.com/"\n`))
      .not.toThrow();
    expect(() => load(`${SITE}[[sites.redirects]]\npath = "/old"\nto = "/older"\n`)).not.toThrow();
  });
});

describe("spa_fallback", () => {
  it("names a file inside static_dir", () => {
    const r = parseConfigTextWithWarnings(`${SITE}spa_fallback = "app/index.html"\n`, {
      baseDir: dir,
    });
    expect(r.config.sites[0].spaFallback).toBe("app/index.html");
    expect(r.warnings).toEqual([]);
  });

  it("warns when the file is missing and fails without static_dir or outside it", () => {
    const r = parseConfigTextWithWarnings(`${SITE}spa_fallback = "/index.html"\n`, {
      baseDir: dir,
    });
    expect(r.warnings.map((w) => w.message)).toEqual([
      `spa_fallback "${join(dir, "public/index.html")}" is not a file (paths that are not files ` +
      "will get 404)",
    ]);
    expect(messages(`${SITE}spa_fallback = "../secret.html"\n`)).toEqual([
      '6: sites[0].spa_fallback: Cannot use spa_fallback "../secret.html": expected a file ' +
      'inside static_dir, like "index.html"',
    ]);
    expect(messages(`[[sites]]
name = "api"
port = 8080
spa_fallback = "index.html"
[sites.proxy]
enabled = true
`)).toEqual([
      "4: sites[0].spa_fallback: spa_fallback needs static_dir (it names a file inside it)",
    ]);
  });
});

describe("[sites.error_pages]", () => {
  it("reads each file's bytes at load, keyed by status or class", () => {
    const c = load(`${SITE}[sites.error_pages]
404 = "errors/404.html"
"5xx" = "${join(dir, "errors/5xx.html")}"
4xx = "errors/404.html"
`);
    const pages = c.sites[0].errorPages;
    expect(Object.keys(pages)).toEqual(["404", "5xx", "4xx"]);
    expect(pages["404"].file).toBe(join(dir, "errors/404.html"));
    expect(new TextDecoder().decode(pages["404"].body)).toBe("<h1>not here</h1>");
    // bytes as they are, not text
    expect([...pages["5xx"].body]).toEqual([0x3c, 0xff, 0x00, 0x3e]);
    expect(Object.isFrozen(pages["404"])).toBe(true);
  });

  it("rejects keys that are not an error status or class", () => {
    expect(messages(`${SITE}[sites.error_pages]
302 = "errors/404.html"
600 = "errors/404.html"
"5XX" = "errors/404.html"
404 = ""
`)).toEqual([
      '7: sites[0].error_pages.302: Cannot use error page key "302": expected a status 400-599, ' +
      '"4xx" or "5xx"',
      '8: sites[0].error_pages.600: Cannot use error page key "600": expected a status 400-599, ' +
      '"4xx" or "5xx"',
      '9: sites[0].error_pages.5XX: Cannot use error page key "5XX": expected a status 400-599, ' +
      '"4xx" or "5xx"',
      '10: sites[0].error_pages.404: expected a non-empty string, got a string ("")',
    ]);
  });

  it("fails with key and line for a missing file, a directory or a file too large", () => {
    const big = join(dir, "errors/big.html");
    Deno.writeFileSync(big, new Uint8Array(MAX_ERROR_PAGE_BYTES + 1));
    expect(messages(`${SITE}[sites.error_pages]
404 = "errors/missing.html"
500 = "errors"
503 = "errors/big.html"
`)).toEqual([
      `7: sites[0].error_pages.404: Cannot read error page "${
        join(dir, "errors/missing.html")
      }": no such file`,
      `8: sites[0].error_pages.500: Cannot read error page "${
        join(dir, "errors")
      }": is a directory`,
      `9: sites[0].error_pages.503: Cannot read error page "${big}": ${
        MAX_ERROR_PAGE_BYTES + 1
      } bytes, more than the ${MAX_ERROR_PAGE_BYTES} bytes allowed`,
    ]);
  });
});

import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { createLogger } from "../src/log/create_logger.ts";
import { BufferedSink, MemorySink } from "../src/log/sink.ts";
import type { LoggingConfig } from "../src/config/types.ts";
import type { AccessEntry } from "../src/log/types.ts";

function cfg(over: Partial<LoggingConfig> = {}): LoggingConfig {
  return {
    level: "info",
    format: "text",
    accessLog: true,
    output: "stdout",
    filePath: "",
    ...over,
  };
}

const entry: AccessEntry = {
  time: Date.UTC(2026, 10, 25, 19, 7, 52, 123),
  site: "main",
  client: "127.0.0.1",
  method: "GET",
  path: "/api/x?y=1",
  status: 200,
  bytesOut: 512,
  durationMs: 1.34,
  upstream: "http://10.0.0.1:3000",
  requestId: "abc",
  route: "/api",
};

describe("createLogger with a file output", () => {
  let dir = "";
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_log_" });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("writes JSON lines that parse, with every access field", async () => {
    const path = join(dir, "json.log");
    const log = createLogger(cfg({ format: "json", output: "file", filePath: path }));
    log.info("listening", { port: 8080, site: "main", err: new Error("boom") });
    log.access(entry);
    log.access({ ...entry, status: 502, error: "connect refused", upstream: "" });
    await log.close();
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    const [app, ok, bad] = lines.map((l) => JSON.parse(l));
    expect(app).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      level: "info",
      msg: "listening",
      port: 8080,
      site: "main",
      err: "Error: boom",
    });
    expect(ok).toEqual({
      type: "access",
      time: "2026-11-25T19:07:52.123Z",
      site: "main",
      client: "127.0.0.1",
      method: "GET",
      path: "/api/x?y=1",
      status: 200,
      bytes_out: 512,
      duration_ms: 1.34,
      upstream: "http://10.0.0.1:3000",
      request_id: "abc",
      route: "/api",
    });
    expect(bad.error).toBe("connect refused");
    expect(bad.status).toBe(502);
  });

  it("writes text lines in the documented shape", async () => {
    const path = join(dir, "text.log");
    const log = createLogger(cfg({ output: "file", filePath: path }));
    log.warn("upstream down", { url: "http://a:1", reason: "timed out after 5s" });
    log.access(entry);
    log.access({ ...entry, upstream: "", route: "", requestId: "" });
    await log.close();
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN upstream down url=http:\/\/a:1 reason="timed out after 5s"$/,
    );
    expect(lines[1]).toBe(
      '2026-11-25T19:07:52.123Z 127.0.0.1 site=main "GET /api/x?y=1" 200 512 1.3ms ' +
        "upstream=http://10.0.0.1:3000 rid=abc route=/api",
    );
    expect(lines[2]).toMatch(/ upstream=- rid=- route=-$/);
  });

  it("reopen() after an external rename writes into a new file at the original path", async () => {
    const path = join(dir, "rotate.log");
    const log = createLogger(cfg({ output: "file", filePath: path }));
    log.info("before rotation");
    await log.reopen(); // flushes first
    await Deno.rename(path, path + ".1");
    log.info("still old handle");
    await log.reopen();
    log.info("after rotation");
    await log.close();
    const rotated = await Deno.readTextFile(path + ".1");
    const fresh = await Deno.readTextFile(path);
    expect(rotated).toContain("before rotation");
    expect(rotated).toContain("still old handle");
    expect(rotated).not.toContain("after rotation");
    expect(fresh.trimEnd().split("\n")).toHaveLength(1);
    expect(fresh).toContain("after rotation");
  });

  it("fails clearly when the log directory does not exist", () => {
    const path = join(dir, "missing", "x.log");
    expect(() => createLogger(cfg({ output: "file", filePath: path }))).toThrow(
      `Cannot open log file "${path}": directory "${join(dir, "missing")}" does not exist`,
    );
  });

  it("batches many access lines and flushes them within the flush interval", async () => {
    const path = join(dir, "batch.log");
    const log = createLogger(cfg({ output: "file", filePath: path }), { flushMs: 30 });
    for (let i = 0; i < 2000; i++) log.access({ ...entry, requestId: `r${i}` });
    // Past the 64 KiB batch threshold something is already on its way; the rest follows.
    await new Promise((r) => setTimeout(r, 120));
    const text = await Deno.readTextFile(path);
    expect(text.trimEnd().split("\n")).toHaveLength(2000);
    expect(text).toContain("rid=r1999 ");
    await log.close();
  });
});

describe("log injection", () => {
  const nasty = '/a\nb\r\n2026-01-01T00:00:00.000Z INFO fake\u2028x"q\\';

  it("keeps one request on one text line, quotes escaped", () => {
    const sink = new MemorySink();
    const log = createLogger(cfg(), { sink });
    log.access({ ...entry, path: nasty, method: "G\nET", error: "x\ny" });
    log.info("msg\nwith newline", { v: "a\nb" });
    expect(sink.lines).toHaveLength(2);
    for (const l of sink.lines) {
      expect(l.endsWith("\n")).toBe(true);
      expect(l.slice(0, -1)).not.toMatch(/[\n\r\u2028\u2029]/);
    }
    expect(sink.lines[0]).toContain(
      '"G\\nET /a\\nb\\r\\n2026-01-01T00:00:00.000Z INFO fake\\u2028x\\"q\\\\"',
    );
    expect(sink.lines[0]).toContain('error="x\\ny"');
  });

  it("keeps one request on one JSON line that round-trips", () => {
    const sink = new MemorySink();
    const log = createLogger(cfg({ format: "json" }), { sink });
    log.access({ ...entry, path: nasty });
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0].slice(0, -1)).not.toMatch(/[\n\r\u2028\u2029]/);
    expect(JSON.parse(sink.lines[0]).path).toBe(nasty);
  });

  it("does not let a field named like a record key replace it", () => {
    const sink = new MemorySink();
    const log = createLogger(cfg({ format: "json" }), { sink });
    log.info("real", { msg: "fake", level: "error" });
    const rec = JSON.parse(sink.lines[0]);
    expect(rec.msg).toBe("real");
    expect(rec.level).toBe("info");
    expect(rec.field_msg).toBe("fake");
  });
});

describe("level filtering", () => {
  it("drops lines below the configured level and reports enabled()", () => {
    const sink = new MemorySink();
    const log = createLogger(cfg({ level: "warn" }), { sink });
    log.trace("t");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(sink.lines.map((l) => l.split(" ")[1])).toEqual(["WARN", "ERROR"]);
    expect(log.enabled("info")).toBe(false);
    expect(log.enabled("warn")).toBe(true);
    expect(log.enabled("error")).toBe(true);
  });

  it("verbose lowers the threshold to debug", () => {
    const sink = new MemorySink();
    const log = createLogger(cfg({ level: "error" }), { sink, verbose: true });
    log.trace("t");
    log.debug("d");
    expect(sink.lines).toHaveLength(1);
    expect(log.enabled("trace")).toBe(false);
  });

  it("access lines are independent of the level and off when access_log = false", () => {
    const on = new MemorySink();
    createLogger(cfg({ level: "error" }), { sink: on }).access(entry);
    expect(on.lines).toHaveLength(1);
    const off = new MemorySink();
    createLogger(cfg({ accessLog: false }), { sink: off }).access(entry);
    expect(off.lines).toHaveLength(0);
  });
});

describe("BufferedSink", () => {
  it("writes a burst of 5000 lines in a handful of writes, in order", async () => {
    const writes: string[] = [];
    const dec = new TextDecoder();
    const sink = new BufferedSink({
      write: (b) => {
        writes.push(dec.decode(b));
        return Promise.resolve();
      },
      reopen: () => Promise.resolve(),
      close: () => Promise.resolve(),
    }, { flushMs: 10_000 });
    for (let i = 0; i < 5000; i++) sink.write(`line ${i}\n`);
    await sink.close();
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(3); // ~49 KB: one batch, plus at most a remainder
    const all = writes.join("").trimEnd().split("\n");
    expect(all).toHaveLength(5000);
    expect(all[4999]).toBe("line 4999");
  });

  it("reaches stdout of a real process and is flushed on close()", async () => {
    const code = `
      import { createLogger } from ${
      JSON.stringify(new URL("../src/log/mod.ts", import.meta.url).href)
    };
      const log = createLogger({ level: "info", format: "json", accessLog: true, output: "stdout", filePath: "" }, { flushMs: 60000 });
      log.info("hello", { n: 1 });
      await log.close();
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    expect(new TextDecoder().decode(out.stderr)).toBe("");
    const rec = JSON.parse(new TextDecoder().decode(out.stdout));
    expect(rec).toMatchObject({ level: "info", msg: "hello", n: 1 });
  });
});

describe("reopen failure", () => {
  it("resolves, keeps writing to the old file and logs the error there", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_log_" });
    const sub = join(dir, "logs");
    await Deno.mkdir(sub);
    const path = join(sub, "a.log");
    const moved = join(dir, "moved");
    const log = createLogger(cfg({ output: "file", filePath: path }));
    try {
      log.info("one");
      await log.reopen();
      await Deno.rename(sub, moved); // the original directory no longer exists
      await log.reopen(); // must not reject
      log.info("two");
      await log.close();
      const text = await Deno.readTextFile(join(moved, "a.log"));
      expect(text).toContain("INFO one");
      expect(text).toMatch(/ERROR Cannot reopen the log file.* error="Cannot reopen log file /);
      expect(text).toContain("INFO two");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

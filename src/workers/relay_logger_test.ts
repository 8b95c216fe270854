import { describe, it } from "node:test";
import { expect } from "expect";
import type { LoggingConfig } from "../config/types.ts";
import type { AccessEntry } from "../log/types.ts";
import type { LogRecord } from "./protocol.ts";
import { RelayLogger } from "./relay_logger.ts";

const CFG: LoggingConfig = {
  level: "info",
  format: "text",
  accessLog: true,
  output: "stderr",
  filePath: "",
};

function entry(path: string): AccessEntry {
  return {
    time: Date.UTC(2026, 11, 6, 12, 0, 0, 5),
    site: "api",
    client: "127.0.0.1",
    method: "GET",
    path,
    status: 200,
    bytesOut: 3,
    durationMs: 1.25,
    upstream: "http://127.0.0.1:9",
    requestId: "r1",
    route: "/",
  };
}

function relay(cfg: LoggingConfig, formatAccess: boolean) {
  const batches: LogRecord[][] = [];
  const logger = new RelayLogger(cfg, (b) => batches.push(b), undefined, 1, formatAccess);
  return { logger, batches };
}

describe("RelayLogger", () => {
  it("formats access lines in the worker and relays them as text, in order with other lines", () => {
    const { logger, batches } = relay(CFG, true);
    logger.access(entry("/a"));
    logger.access(entry("/b"));
    logger.warn("upstream down", { upstream: "x" });
    logger.access(entry("/c"));
    logger.flush();
    expect(batches).toHaveLength(1);
    const [first, line, last] = batches[0];
    expect(batches[0]).toHaveLength(3);
    expect(first).toEqual({
      kind: "access_lines",
      text: '2026-12-06T12:00:00.005Z 127.0.0.1 site=api "GET /a" 200 3 1.3ms ' +
        "upstream=http://127.0.0.1:9 rid=r1 route=/\n" +
        '2026-12-06T12:00:00.005Z 127.0.0.1 site=api "GET /b" 200 3 1.3ms ' +
        "upstream=http://127.0.0.1:9 rid=r1 route=/\n",
    });
    expect(line).toMatchObject({ kind: "line", level: "warn", msg: "upstream down" });
    expect(last.kind).toBe("access_lines");
    expect((last as { text: string }).text).toContain('"GET /c"');
  });

  it("sends a batch once 512 records are pending, access lines counted one by one", () => {
    const { logger, batches } = relay(CFG, true);
    for (let i = 0; i < 511; i++) logger.access(entry(`/${i}`));
    expect(batches).toHaveLength(0);
    logger.access(entry("/last"));
    expect(batches).toHaveLength(1);
    const text = (batches[0][0] as { text: string }).text;
    expect(text.split("\n").filter((l) => l !== "")).toHaveLength(512);
    logger.close();
  });

  it("formats JSON lines for the JSON format", () => {
    const { logger, batches } = relay({ ...CFG, format: "json" }, true);
    logger.access(entry("/j"));
    logger.flush();
    const text = (batches[0][0] as { text: string }).text;
    expect(JSON.parse(text)).toMatchObject({ type: "access", path: "/j", status: 200 });
  });

  it("relays entries for a supervisor with an embedding program's own logger", () => {
    const { logger, batches } = relay(CFG, false);
    logger.access(entry("/e"));
    logger.flush();
    expect(batches[0]).toEqual([{ kind: "access", entry: entry("/e") }]);
  });

  it("relays nothing for access when the access log is off", () => {
    const { logger, batches } = relay({ ...CFG, accessLog: false }, true);
    logger.access(entry("/off"));
    logger.flush();
    expect(batches).toHaveLength(0);
  });
});

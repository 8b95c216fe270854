/**
 * Line formats for application and access records, in text and JSON. Every function returns
 * exactly one line including its trailing `\n`.
 *
 * Text: `2026-11-25T19:07:52.123Z INFO message key=value key2="quoted value"`
 * Access (text): `2026-11-25T19:07:52.123Z 127.0.0.1 site=main "GET /api/x?y=1" 200 512 1.3ms
 * upstream=http://10.0.0.1:3000 rid=abc route=/api` (one line; `-` for an empty field).
 * JSON: one object per line; access records carry `"type":"access"`.
 *
 * @module
 */

import type { AccessEntry, LogFields } from "./types.ts";
import { LEVEL_JSON, LEVEL_TEXT } from "./levels.ts";
import { escapeQuoted, jsonString, textValue } from "./escape.ts";

let lastMs = -1;
let lastIso = "";

let lastSecond = -1;
let secondPrefix = "";

/**
 * ISO-8601 UTC time of an epoch-ms instant. The part up to the seconds is built once per second
 * (a Date per request costs more than the rest of the access line); the milliseconds are added.
 */
export function isoTime(ms: number): string {
  if (ms === lastMs) return lastIso;
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "…T19:07:52."
  }
  const milli = whole - second * 1000;
  lastMs = ms;
  lastIso = secondPrefix + (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli + "Z";
  return lastIso;
}

function fieldToString(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (v === undefined) return "undefined";
  if (typeof v === "object" && v !== null) {
    try {
      return JSON.stringify(v);
    } catch {
      return String(v);
    }
  }
  return String(v);
}

function fieldToJson(v: unknown): string {
  switch (typeof v) {
    case "string":
      return jsonString(v);
    case "number":
      return Number.isFinite(v) ? String(v) : jsonString(String(v));
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return jsonString(v.toString());
    case "undefined":
      return "null";
  }
  if (v === null) return "null";
  if (v instanceof Error) return jsonString(`${v.name}: ${v.message}`);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? jsonString(String(v)) : s.replace(/[\u2028\u2029]/g, escapeSep);
  } catch {
    return jsonString(String(v));
  }
}

function escapeSep(c: string): string {
  return c === "\u2028" ? "\\u2028" : "\\u2029";
}

const RESERVED_JSON_KEYS = new Set(["time", "level", "msg", "type"]);
const KEY_SAFE = /^[A-Za-z0-9_.\-]+$/;

/** An application log line in the text format. `rank` is the level's rank (0 = trace). */
export function formatText(time: number, rank: number, msg: string, fields?: LogFields): string {
  let line = isoTime(time) + " " + LEVEL_TEXT[rank] + " " + escapeQuoted(msg);
  if (fields) {
    for (const key in fields) {
      const k = KEY_SAFE.test(key) ? key : textValue(key);
      line += " " + k + "=" + textValue(fieldToString(fields[key]));
    }
  }
  return line + "\n";
}

/** An application log line in the JSON format: `{"time","level","msg",...fields}`. */
export function formatJson(time: number, rank: number, msg: string, fields?: LogFields): string {
  let line = '{"time":"' + isoTime(time) + '","level":"' + LEVEL_JSON[rank] + '","msg":' +
    jsonString(msg);
  if (fields) {
    for (const key in fields) {
      // A field must not shadow the record's own keys (JSON.parse keeps the last duplicate).
      const k = RESERVED_JSON_KEYS.has(key) ? "field_" + key : key;
      line += "," + jsonString(k) + ":" + fieldToJson(fields[key]);
    }
  }
  return line + "}\n";
}

function num(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

function dash(s: string): string {
  return s === "" ? "-" : textValue(s);
}

/** `dash` remembering its last answer: site, route, upstream and client mostly repeat from one
 * access line to the next, and a repeat is the same string object (from the plan, or the
 * connection's peer), so the check is a pointer compare instead of a regular expression. */
class RepeatDash {
  #in = "";
  #out = "-";
  of(s: string): string {
    if (s !== this.#in) {
      this.#in = s;
      this.#out = dash(s);
    }
    return this.#out;
  }
}

const siteText = new RepeatDash();
const clientText = new RepeatDash();
const upstreamText = new RepeatDash();
const routeText = new RepeatDash();

/** `1.3ms`, `12ms`: tenths of a millisecond, from integers (their strings are cached by V8,
 * where a fraction's are built digit by digit). */
function durationText(ms: number): string {
  const tenths = Math.round(ms * 10);
  const whole = Math.floor(tenths / 10);
  const tenth = tenths - whole * 10;
  return tenth === 0 ? whole + "ms" : whole + "." + tenth + "ms";
}

/** ` <client> site=<site> "`, remembered while the pair repeats (a pointer compare each). */
class ClientSite {
  #client = "";
  #site = "";
  #out = "";
  of(client: string, site: string): string {
    if (client !== this.#client || site !== this.#site || this.#out === "") {
      this.#client = client;
      this.#site = site;
      this.#out = " " + clientText.of(client) + " site=" + siteText.of(site) + ' "';
    }
    return this.#out;
  }
}

/** `" upstream=<upstream> rid=`, remembered while the upstream repeats. */
class UpstreamPart {
  #upstream = "";
  #out = "";
  of(upstream: string): string {
    if (upstream !== this.#upstream || this.#out === "") {
      this.#upstream = upstream;
      this.#out = " upstream=" + upstreamText.of(upstream) + " rid=";
    }
    return this.#out;
  }
}

const clientSite = new ClientSite();
const upstreamPart = new UpstreamPart();

/** An access line in the text format (combined-log-like, every field, one line). */
export function formatAccessText(e: AccessEntry): string {
  let line = isoTime(e.time) + clientSite.of(e.client, e.site) + escapeQuoted(e.method) + " " +
    escapeQuoted(e.path) + '" ' + num(e.status) + " " + num(e.bytesOut) + " " +
    durationText(num(e.durationMs)) + upstreamPart.of(e.upstream) + dash(e.requestId) +
    " route=" + routeText.of(e.route);
  if (e.refused) line += " refused=" + textValue(e.refused);
  if (e.error) line += " error=" + textValue(e.error);
  return line + "\n";
}

/**
 * An access line in the JSON format:
 * `{"type":"access","time","site","client","method","path","status","bytes_out",
 * "duration_ms","upstream","request_id","route"[,"refused"][,"error"]}`.
 */
export function formatAccessJson(e: AccessEntry): string {
  let line = '{"type":"access","time":"' + isoTime(e.time) + '","site":' + jsonString(e.site) +
    ',"client":' + jsonString(e.client) + ',"method":' + jsonString(e.method) + ',"path":' +
    jsonString(e.path) + ',"status":' + num(e.status) + ',"bytes_out":' +
    num(e.bytesOut) + ',"duration_ms":' + Math.round(num(e.durationMs) * 1000) / 1000 +
    ',"upstream":' +
    jsonString(e.upstream) + ',"request_id":' + jsonString(e.requestId) + ',"route":' +
    jsonString(e.route);
  if (e.refused) line += ',"refused":' + jsonString(e.refused);
  if (e.error) line += ',"error":' + jsonString(e.error);
  return line + "}\n";
}

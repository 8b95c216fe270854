/**
 * The WebSocket opening handshake as a proxy checks it (RFC 6455 §4): the client's upgrade
 * request before any upstream is contacted, and the upstream's 101 before the client is told.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Fields } from "../http1/types.ts";
import { HandshakeError } from "./errors.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 4.1): 22 characters and "==". */
const KEY_SHAPE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** Whether a request asks for a WebSocket: GET with `Upgrade: websocket` (any case). */
export function isWebSocketUpgrade(method: string, headers: Fields): boolean {
  return method === "GET" && hasToken(headers.get("upgrade"), "websocket");
}

/** The client's offered subprotocols, in order. */
export function offeredProtocols(headers: Fields): string[] {
  const header = headers.get("sec-websocket-protocol");
  if (header === null) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * Checks the client's upgrade request; returns its Sec-WebSocket-Key. Throws
 * {@link HandshakeError} ("bad_upgrade" or "version").
 */
export function checkClientUpgrade(
  method: string,
  headers: Fields,
  hasBody: boolean,
): string {
  if (!isWebSocketUpgrade(method, headers) || !hasToken(headers.get("connection"), "upgrade")) {
    throw new HandshakeError("bad_upgrade", "Cannot upgrade: not a WebSocket upgrade request");
  }
  if (hasBody) {
    throw new HandshakeError("bad_upgrade", "Cannot upgrade: the upgrade request has a body");
  }
  const key = headers.get("sec-websocket-key")?.trim() ?? "";
  if (!KEY_SHAPE.test(key)) {
    throw new HandshakeError(
      "bad_upgrade",
      "Cannot upgrade: missing or malformed Sec-WebSocket-Key",
    );
  }
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    throw new HandshakeError("version", "Cannot upgrade: Sec-WebSocket-Version is not 13");
  }
  return key;
}

/** The Sec-WebSocket-Accept an upstream must answer for `key`. */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/**
 * Checks the upstream's 101 headers against what the client sent: Upgrade websocket, the
 * accept value for the client's key, a subprotocol among those offered. Throws
 * {@link HandshakeError} ("upstream_handshake").
 */
export function checkUpstreamSwitch(
  headers: readonly (readonly [string, string])[],
  key: string,
  offered: readonly string[],
): void {
  let upgrade: string | null = null;
  let accept: string | null = null;
  let protocol: string | null = null;
  for (const [name, value] of headers) {
    if (name === "upgrade") upgrade = value;
    else if (name === "sec-websocket-accept") accept = value.trim();
    else if (name === "sec-websocket-protocol") protocol = value.trim();
  }
  const fail = (why: string) => new HandshakeError("upstream_handshake", `Cannot upgrade: ${why}`);
  if (!hasToken(upgrade, "websocket")) {
    throw fail("the upstream's 101 does not switch to websocket");
  }
  if (accept !== acceptFor(key)) throw fail("the upstream's Sec-WebSocket-Accept does not match");
  if (protocol !== null && !offered.includes(protocol)) {
    throw fail(`the upstream chose subprotocol "${protocol}", which the client did not offer`);
  }
}

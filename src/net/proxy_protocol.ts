/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that an L4 load
 * balancer sends before the first byte of the client's connection, naming the client.
 *
 * `parseProxyHeader` is a pure function over bytes: given `buf[start, end)` it answers that it
 * needs more bytes, that the bytes are not a valid header (close the connection), or the header
 * with the number of bytes it took. The caller reads until it gets one of the last two; a v1
 * header is at most 107 bytes, a v2 header at most 16 + 65535.
 *
 * @module
 */

import { parseIp } from "./cidr.ts";

/** An address and port named by a header. */
export interface ProxyAddress {
  readonly hostname: string;
  readonly port: number;
}

/** A complete, valid header. */
export interface ProxyHeader {
  readonly kind: "header";
  readonly version: 1 | 2;
  /** Bytes the header took: the connection's own data starts at `start + consumed`. */
  readonly consumed: number;
  /**
   * "proxy": relayed for a client (use `source` when it is not null). "local": the balancer's
   * own connection (a health check): keep the socket's addresses.
   */
  readonly command: "proxy" | "local";
  /** "unknown": v1 UNKNOWN, v2 UNSPEC, datagram or an address family without an IP. */
  readonly family: "tcp4" | "tcp6" | "unix" | "unknown";
  /** The client; null unless family is tcp4 or tcp6 and command is "proxy". */
  readonly source: ProxyAddress | null;
  /** The address the client connected to (the balancer's); null like `source`. */
  readonly destination: ProxyAddress | null;
}

/** What `parseProxyHeader` found. */
export type ProxyParseResult =
  | { readonly kind: "need-more" }
  | { readonly kind: "error"; readonly message: string }
  | ProxyHeader;

/** Longest v1 header, CRLF included. */
export const PROXY_V1_MAX = 107;
/** Longest v2 header. */
export const PROXY_V2_MAX = 16 + 0xffff;

const NEED_MORE: ProxyParseResult = Object.freeze({ kind: "need-more" });
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

const fail = (detail: string): ProxyParseResult => ({
  kind: "error",
  message: `Cannot read PROXY protocol header: ${detail}`,
});

/** Parses a PROXY v1 or v2 header at the start of `buf[start, end)`. */
export function parseProxyHeader(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
): ProxyParseResult {
  if (end <= start) return NEED_MORE;
  const first = buf[start];
  const sig = first === V1_PREFIX[0] ? V1_PREFIX : first === V2_SIGNATURE[0] ? V2_SIGNATURE : null;
  if (sig === null) return fail("the connection does not start with one");
  const n = Math.min(sig.length, end - start);
  for (let i = 0; i < n; i++) {
    if (buf[start + i] !== sig[i]) return fail("the connection does not start with one");
  }
  if (n < sig.length) return NEED_MORE;
  return sig === V1_PREFIX ? parseV1(buf, start, end) : parseV2(buf, start, end);
}

// ------------------------------------------------------------------------------------- v1

function parseV1(buf: Uint8Array, start: number, end: number): ProxyParseResult {
  // The CR may stand at most one byte before the 107th, where its LF goes.
  const crLimit = start + PROXY_V1_MAX - 1;
  const limit = Math.min(end, crLimit);
  let cr = -1;
  for (let i = start + V1_PREFIX.length; i < limit; i++) {
    const b = buf[i];
    if (b === 0x0d) {
      cr = i;
      break;
    }
    if (b === 0x0a) return fail("v1 line ends with a bare LF");
    if (b < 0x20 || b > 0x7e) return fail("v1 line has a byte that is not printable ASCII");
  }
  if (cr < 0) {
    return end >= crLimit ? fail(`v1 line is longer than ${PROXY_V1_MAX} bytes`) : NEED_MORE;
  }
  if (cr + 1 >= end) return NEED_MORE;
  if (buf[cr + 1] !== 0x0a) return fail("v1 line has a CR not followed by LF");
  const consumed = cr + 2 - start;
  let line = "";
  for (let i = start + V1_PREFIX.length; i < cr; i++) line += String.fromCharCode(buf[i]);
  const parts = line.split(" ");
  const proto = parts[0];
  if (proto === "UNKNOWN") {
    return header(1, consumed, "proxy", "unknown", null, null);
  }
  if (proto !== "TCP4" && proto !== "TCP6") {
    return fail(`v1 protocol "${proto}" is not TCP4, TCP6 or UNKNOWN`);
  }
  if (parts.length !== 5) {
    return fail("v1 line needs four fields after the protocol, one space apart");
  }
  const v4 = proto === "TCP4";
  const src = v4 ? ipv4Text(parts[1]) : ipv6Text(parts[1]);
  const dst = v4 ? ipv4Text(parts[2]) : ipv6Text(parts[2]);
  if (src === null) return fail(`v1 source address "${parts[1]}" is not ${v4 ? "IPv4" : "IPv6"}`);
  if (dst === null) {
    return fail(`v1 destination address "${parts[2]}" is not ${v4 ? "IPv4" : "IPv6"}`);
  }
  const sport = portText(parts[3]);
  const dport = portText(parts[4]);
  if (sport === null) return fail(`v1 source port "${parts[3]}" is not 0-65535`);
  if (dport === null) return fail(`v1 destination port "${parts[4]}" is not 0-65535`);
  return header(
    1,
    consumed,
    "proxy",
    v4 ? "tcp4" : "tcp6",
    { hostname: src, port: sport },
    { hostname: dst, port: dport },
  );
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function ipv4Text(s: string): string | null {
  return IPV4.test(s) ? s : null;
}

/** An IPv6 address in text, in its RFC 5952 form, or null. */
function ipv6Text(s: string): string | null {
  if (!s.includes(":") || s.includes("%") || s.startsWith("[")) return null;
  const v = parseIp(s);
  if (v === null) return null;
  const bytes = new Uint8Array(16);
  let x = v;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return formatIpv6(bytes, 0);
}

function portText(s: string): number | null {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

// ------------------------------------------------------------------------------------- v2

function parseV2(buf: Uint8Array, start: number, end: number): ProxyParseResult {
  if (end - start < 16) return NEED_MORE;
  const verCmd = buf[start + 12];
  if (verCmd >> 4 !== 2) return fail(`v2 version ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return fail(`v2 command ${cmd} is neither LOCAL (0) nor PROXY (1)`);
  const fam = buf[start + 13];
  const af = fam >> 4;
  const transport = fam & 0x0f;
  if (af > 3) return fail(`v2 address family ${af} is unknown`);
  if (transport > 2) return fail(`v2 transport ${transport} is unknown`);
  const len = (buf[start + 14] << 8) | buf[start + 15];
  const need = [0, 12, 36, 216][af];
  if (len < need) return fail(`v2 length ${len} is too short for its addresses (${need})`);
  if (end - start < 16 + len) return NEED_MORE;
  const consumed = 16 + len;
  // TLVs (after the addresses) carry nothing bws uses: skipped with the rest of `len`.
  if (cmd === 0) return header(2, consumed, "local", "unknown", null, null);
  const a = start + 16;
  if (af === 3) return header(2, consumed, "proxy", "unix", null, null);
  if (af === 0 || transport !== 1) return header(2, consumed, "proxy", "unknown", null, null);
  if (af === 1) {
    const ip = (o: number) => `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`;
    return header(
      2,
      consumed,
      "proxy",
      "tcp4",
      { hostname: ip(a), port: (buf[a + 8] << 8) | buf[a + 9] },
      { hostname: ip(a + 4), port: (buf[a + 10] << 8) | buf[a + 11] },
    );
  }
  return header(
    2,
    consumed,
    "proxy",
    "tcp6",
    { hostname: formatIpv6(buf, a), port: (buf[a + 32] << 8) | buf[a + 33] },
    { hostname: formatIpv6(buf, a + 16), port: (buf[a + 34] << 8) | buf[a + 35] },
  );
}

function header(
  version: 1 | 2,
  consumed: number,
  command: "proxy" | "local",
  family: ProxyHeader["family"],
  source: ProxyAddress | null,
  destination: ProxyAddress | null,
): ProxyHeader {
  return { kind: "header", version, consumed, command, family, source, destination };
}

/**
 * The 16 bytes at `buf[at]` as RFC 5952 text: lower-case hex, no leading zeros, the longest
 * run (of two or more) of zero groups as "::", and IPv4-mapped addresses as `::ffff:a.b.c.d`.
 */
export function formatIpv6(buf: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((buf[at + 2 * i] << 8) | buf[at + 2 * i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

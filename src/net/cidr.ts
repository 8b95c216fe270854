/**
 * CIDR parsing and matching, for `server.trusted_proxies` and the `access` rules. Addresses are
 * compared as 128-bit values (IPv4 mapped into ::ffff:0:0/96) so one matcher serves both families.
 *
 * @module
 */

interface Range {
  readonly hi: bigint;
  readonly lo: bigint;
  readonly bits: number;
}

function parseIPv4(s: string): bigint | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

/** Parses an IPv4 or IPv6 address (no brackets, no zone) into a 128-bit value, or null. */
export function parseIp(input: string): bigint | null {
  let s = input;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) {
    const v4 = parseIPv4(s);
    return v4 === null ? null : (0xffffn << 32n) | v4;
  }
  let tail: bigint | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    tail = parseIPv4(s.slice(lastColon + 1));
    if (tail === null) return null;
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail !== null) v = (v & ~0xffffffffn) | tail;
  return v;
}

function parseRange(cidr: string): Range | null {
  const slash = cidr.indexOf("/");
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const v = parseIp(addr);
  if (v === null) return null;
  const isV4 = !addr.includes(":");
  const max = isV4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = cidr.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return null;
    bits = Number(p);
  }
  const total = isV4 ? bits + 96 : bits;
  const mask = total === 0 ? 0n : ((1n << BigInt(total)) - 1n) << BigInt(128 - total);
  return { hi: v & mask, lo: mask, bits: total };
}

/** Throws TypeError when `cidr` is not an address or address/prefix. */
export function validateCidr(cidr: string): void {
  if (!parseRange(cidr)) {
    throw new TypeError(`Cannot parse CIDR "${cidr}": expected addr or addr/prefix`);
  }
}

/** A set of CIDR ranges; `has(ip)` is cached per address string since peers repeat. */
export class CidrSet {
  readonly #ranges: readonly Range[];
  readonly #cache = new Map<string, boolean>();

  constructor(cidrs: readonly string[]) {
    const ranges: Range[] = [];
    for (const c of cidrs) {
      const r = parseRange(c);
      if (!r) throw new TypeError(`Cannot parse CIDR "${c}": expected addr or addr/prefix`);
      ranges.push(r);
    }
    this.#ranges = ranges;
  }

  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  has(ip: string): boolean {
    if (this.#ranges.length === 0) return false;
    const cached = this.#cache.get(ip);
    if (cached !== undefined) return cached;
    const v = parseIp(ip);
    const hit = v !== null && this.#ranges.some((r) => (v & r.lo) === r.hi);
    if (this.#cache.size > 4096) this.#cache.clear();
    this.#cache.set(ip, hit);
    return hit;
  }
}

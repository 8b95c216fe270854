/**
 * Loopback address test used to keep the management API local by default.
 *
 * @module
 */

/**
 * True for `localhost`, any `127.0.0.0/8` address, `::1` and IPv4-mapped `::ffff:127.x.y.z`
 * (brackets around IPv6 are accepted).
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (h.startsWith("::ffff:")) h = h.slice(7);
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * True for a Host value (`name[:port]`, `[v6][:port]`) that names a loopback host: what a
 * browser sends to the management API when it was opened by a loopback address or `localhost`,
 * never when a page's own name was made to resolve to 127.0.0.1 (DNS rebinding).
 */
export function isLoopbackAuthority(authority: string): boolean {
  let h = authority;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0 || (end + 1 < h.length && h[end + 1] !== ":")) return false;
    h = h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(":");
    if (colon >= 0) h = h.slice(0, colon);
  }
  return isLoopbackHost(h);
}

/** True for an Origin header of a page served from a loopback host (`http://localhost:7654`). */
export function isLoopbackOrigin(origin: string): boolean {
  const m = /^https?:\/\/([^/?#@]+)$/i.exec(origin);
  return m !== null && isLoopbackAuthority(m[1]);
}

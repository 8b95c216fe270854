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

/**
 * Host header validation: the characters RFC 3986 allows in a host and port (reg-name,
 * IP-literal, percent-encoding), nothing else.
 *
 * @module
 */

const HOST_CHARS =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%";
const ALLOWED = new Uint8Array(128);
for (let i = 0; i < HOST_CHARS.length; i++) ALLOWED[HOST_CHARS.charCodeAt(i)] = 1;

/**
 * Whether `host` is a Host header value bws accepts. A "/" would shift where Deno.serve's
 * request URL starts the path (it joins scheme, Host and target), so routing and the upstream
 * would see a different path than the client sent; spaces, "@", quotes and non-ASCII bytes have
 * no place in a host either. No allocation.
 */
export function isValidHost(host: string): boolean {
  if (host.length === 0) return false;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 128 || ALLOWED[c] === 0) return false;
  }
  return true;
}

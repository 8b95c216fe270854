/**
 * A parsed upstream URL, built once at config compile time so the hot path never parses URLs.
 *
 * @module
 */

export interface UpstreamTarget {
  /** The URL as configured, for logs and status (never shown to clients). */
  readonly url: string;
  readonly tls: boolean;
  /** Host name or IP literal without brackets (`::1`, `127.0.0.1`, `api.internal`). */
  readonly hostname: string;
  readonly port: number;
  /** `host:port` as sent in Host when `preserve_host = false` (default port omitted, IPv6 in brackets). */
  readonly hostHeader: string;
  /** Path prefix from the URL without a trailing "/" ("" when none): prepended to forwarded paths. */
  readonly basePath: string;
  /** Pool key: `http://host:port` / `https://host:port`. */
  readonly origin: string;
}

/** Parses `http://host[:port][/prefix]` or `https://…`; throws TypeError with a clear message. */
export function parseUpstreamUrl(url: string): UpstreamTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`Cannot parse upstream URL "${url}": not a valid URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`Cannot use upstream URL "${url}": scheme must be http or https`);
  }
  if (u.username || u.password) {
    throw new TypeError(`Cannot use upstream URL "${url}": credentials in URLs are not supported`);
  }
  if (u.search || u.hash) {
    throw new TypeError(`Cannot use upstream URL "${url}": query and fragment are not allowed`);
  }
  if (!u.hostname) throw new TypeError(`Cannot use upstream URL "${url}": host is missing`);
  const tls = u.protocol === "https:";
  const port = u.port ? Number(u.port) : (tls ? 443 : 80);
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const hostHeader = u.host; // URL omits the default port and keeps IPv6 brackets
  let basePath = u.pathname;
  while (basePath.endsWith("/")) basePath = basePath.slice(0, -1);
  return Object.freeze({
    url,
    tls,
    hostname,
    port,
    hostHeader,
    basePath,
    origin: `${u.protocol}//${u.hostname}:${port}`,
  });
}

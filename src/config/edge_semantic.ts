/**
 * Cross-key checks of the edge-protection keys: a basic_auth with users to check
 * (its htpasswd file read and parsed here, so every load and reload re-reads it), and
 * `proxy_protocol` agreeing among the sites of one listener and having peers to trust.
 *
 * @module
 */

import { readHtpasswdFileSync } from "../edge/htpasswd.ts";
import { childPath } from "./key_path.ts";
import type { BasicAuthConfig, Config, EdgeTables } from "./types.ts";

type Report = (path: string, message: string) => void;

/** Reports every edge-protection problem of `config`; `broken(p)` tells a key already failed. */
export function checkEdgeProtection(
  config: Config,
  err: Report,
  broken: (path: string) => boolean,
): void {
  config.sites.forEach((site, i) => {
    const p = `sites[${i}]`;
    checkTables(site, p, err, broken);
    site.proxy.routes.forEach((route, j) => {
      checkTables(route, `${p}.proxy.routes[${j}]`, err, broken);
    });
  });
  checkProxyProtocol(config, err);
}

function checkTables(
  tables: EdgeTables,
  p: string,
  err: Report,
  broken: (path: string) => boolean,
): void {
  if (tables.basicAuth) checkBasicAuth(tables.basicAuth, `${p}.basic_auth`, err, broken);
}

function checkBasicAuth(
  auth: BasicAuthConfig,
  p: string,
  err: Report,
  broken: (path: string) => boolean,
): void {
  const inline = Object.keys(auth.users);
  if (auth.htpasswdFile === "") {
    if (inline.length === 0 && !broken(`${p}.users`) && !broken(`${p}.htpasswd_file`)) {
      err(p, "basic_auth needs users or an htpasswd_file: nobody could sign in");
    }
    return;
  }
  const file = readHtpasswdFileSync(auth.htpasswdFile);
  if (!file.ok) {
    for (const problem of file.problems) err(`${p}.htpasswd_file`, problem);
    return;
  }
  for (const user of inline) {
    if (file.users.has(user)) {
      err(
        childPath(`${p}.users`, user),
        `user "${user}" is in both users and htpasswd_file "${auth.htpasswdFile}"`,
      );
    }
  }
}

function checkProxyProtocol(config: Config, err: Report): void {
  const byListener = new Map<string, number[]>();
  config.sites.forEach((s, i) => {
    if (s.port === 0) return; // an ephemeral port per site: never shared
    const key = `${s.bind} ${s.port}`;
    byListener.set(key, [...(byListener.get(key) ?? []), i]);
  });
  for (const indexes of byListener.values()) {
    const first = config.sites[indexes[0]];
    for (const i of indexes.slice(1)) {
      const s = config.sites[i];
      if (s.proxyProtocol !== first.proxyProtocol) {
        const [on, off] = s.proxyProtocol ? [s, first] : [first, s];
        err(
          `sites[${i}].proxy_protocol`,
          `sites "${first.name}" and "${s.name}" share ${s.bind}:${s.port} but only "${on.name}" ` +
            `sets proxy_protocol = true (set it on "${off.name}" too, or use another port: a ` +
            "port either expects a PROXY header on every connection or on none)",
        );
      }
    }
  }
  if (config.server.trustedProxies.length > 0) return;
  config.sites.forEach((s, i) => {
    if (!s.proxyProtocol) return;
    err(
      `sites[${i}].proxy_protocol`,
      "proxy_protocol = true needs server.trusted_proxies: only the load balancers listed " +
        "there may send a PROXY header (every other connection is closed)",
    );
  });
}

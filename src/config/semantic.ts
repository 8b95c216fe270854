/**
 * Checks that span several keys (duplicate names, dangling upstream references, listener
 * conflicts …) on the built config. Also produces warnings (things that may be fine).
 *
 * @module
 */

import { join } from "node:path";
import { parseUpstreamUrl } from "../upstream/target.ts";
import { checkEdgeProtection } from "./edge_semantic.ts";
import type { Config, SiteConfig } from "./types.ts";
import type { RawIssue } from "./validate.ts";
import { errorText } from "../log/error_text.ts";

/**
 * Cross-key checks. `schemaIssues` are the issues already found: checks whose inputs were
 * invalid are skipped so that one mistake is not reported twice.
 */
export function checkSemantics(
  config: Config,
  schemaIssues: readonly RawIssue[],
): { errors: RawIssue[]; warnings: RawIssue[] } {
  const errors: RawIssue[] = [];
  const warnings: RawIssue[] = [];
  const err = (path: string, message: string) => errors.push({ path, message });
  const broken = (prefix: string) =>
    schemaIssues.some((i) =>
      i.path === prefix || i.path.startsWith(prefix + ".") || i.path.startsWith(prefix + "[")
    );

  if (config.sites.length === 0 && !broken("sites")) {
    err("sites", "no sites defined: add at least one [[sites]] table");
  }

  const names = new Map<string, number>();
  config.sites.forEach((site, i) => {
    const p = `sites[${i}]`;
    if (site.name) {
      const first = names.get(site.name);
      if (first !== undefined) {
        err(`${p}.name`, `duplicate site name "${site.name}" (also sites[${first}].name)`);
      } else names.set(site.name, i);
    }
    checkSite(site, p, err, (path, message) => warnings.push({ path, message }), broken);
    // Not an error: startup does not need the directory, and a deploy may create it later.
    const staticProblem = site.staticDir ? directoryProblem(site.staticDir) : null;
    if (staticProblem) {
      warnings.push({
        path: `${p}.static_dir`,
        message: `static_dir "${site.staticDir}" ${staticProblem} ` +
          "(requests not routed to a proxy will get 404)",
      });
    }
  });

  checkListeners(config, err);
  checkEdgeProtection(config, err, broken);

  if (config.logging.output === "file" && !config.logging.filePath) {
    err("logging.file_path", 'file_path is required when output = "file"');
  }
  return { errors, warnings };
}

type Report = (path: string, message: string) => void;

/** "does not exist" / "is not a directory", or null for a directory (or when it cannot tell). */
function directoryProblem(path: string): string | null {
  try {
    return Deno.statSync(path).isDirectory ? null : "is not a directory";
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "does not exist" : null;
  }
}

function checkSite(
  site: SiteConfig,
  p: string,
  err: Report,
  warn: Report,
  broken: (p: string) => boolean,
) {
  const proxy = site.proxy;
  if (
    !site.staticDir && !proxy.enabled && site.redirects.length === 0 &&
    !broken(`${p}.static_dir`) && !broken(`${p}.proxy`) && !broken(`${p}.redirects`)
  ) {
    err(
      p,
      `site "${site.name}" serves nothing: set static_dir, enable [sites.proxy] or add ` +
        "[[sites.redirects]]",
    );
  }
  checkWebFeatures(site, p, err, warn);

  const groups = new Set(proxy.upstreams.map((u) => u.name));
  proxy.upstreams.forEach((u, j) => {
    if (!u.url) return;
    try {
      parseUpstreamUrl(u.url);
    } catch (e) {
      err(`${p}.proxy.upstreams[${j}].url`, errorText(e));
    }
  });
  // Only a broken or missing group name makes "unknown upstream" unreliable; a bad weight or
  // URL does not.
  const upstreamsBroken = proxy.upstreams.some((u, j) =>
    !u.name || broken(`${p}.proxy.upstreams[${j}].name`)
  );
  const paths = new Map<string, number>();
  proxy.routes.forEach((r, j) => {
    const rp = `${p}.proxy.routes[${j}]`;
    if (r.upstream && !groups.has(r.upstream) && !upstreamsBroken) {
      const known = [...groups];
      err(
        `${rp}.upstream`,
        `Cannot route to upstream "${r.upstream}": no [[sites.proxy.upstreams]] named so in ` +
          `site "${site.name}"` + (known.length ? ` (known: ${known.join(", ")})` : ""),
      );
    }
    if (r.path) {
      const first = paths.get(r.path);
      if (first !== undefined) {
        err(
          `${rp}.path`,
          `duplicate route path "${r.path}" (also ${p}.proxy.routes[${first}].path)`,
        );
      } else paths.set(r.path, j);
    }
  });
  if (proxy.enabled && proxy.routes.length === 0 && !broken(`${p}.proxy.routes`)) {
    warn(`${p}.proxy`, "proxy is enabled but has no [[sites.proxy.routes]]: nothing is proxied");
  }

  const ssl = site.ssl;
  if (ssl.enabled) {
    const hasFiles = ssl.certFile !== "" && ssl.keyFile !== "";
    if (!hasFiles && !ssl.autoCert && !broken(`${p}.ssl`)) {
      err(`${p}.ssl`, "ssl is enabled but has neither cert_file and key_file nor auto_cert = true");
    }
    if ((ssl.certFile === "") !== (ssl.keyFile === "")) {
      const missing = ssl.certFile === "" ? "cert_file" : "key_file";
      err(`${p}.ssl.${missing}`, "cert_file and key_file must be set together");
    }
  }
  if (ssl.autoCert) {
    if (!ssl.acme.enabled) {
      err(`${p}.ssl.auto_cert`, "auto_cert needs [sites.ssl.acme] with enabled = true");
    }
    if (!ssl.enabled) {
      err(`${p}.ssl.auto_cert`, "auto_cert needs ssl.enabled = true");
    }
  }
  if (ssl.acme.enabled) {
    const acmeNames = [site.hostname, ...site.hostnames, ...ssl.domains].filter(Boolean);
    if (acmeNames.length === 0) {
      err(`${p}.ssl.acme`, "ACME needs a name: set hostname, hostnames or ssl.domains");
    }
    const wild = acmeNames.find((n) => n.startsWith("*."));
    if (wild && ssl.autoCert) {
      err(
        `${p}.ssl.acme`,
        `Cannot obtain a certificate for "${wild}": wildcards need DNS-01, bws uses HTTP-01 ` +
          "(list the names in ssl.domains instead)",
      );
    }
  }
}

/** spa_fallback and redirects. */
function checkWebFeatures(site: SiteConfig, p: string, err: Report, warn: Report): void {
  if (site.spaFallback) {
    if (!site.staticDir) {
      err(`${p}.spa_fallback`, "spa_fallback needs static_dir (it names a file inside it)");
    } else if (directoryProblem(site.staticDir) === null) {
      const file = join(site.staticDir, ...site.spaFallback.split("/").filter(Boolean));
      if (!isFile(file)) {
        warn(
          `${p}.spa_fallback`,
          `spa_fallback "${file}" is not a file (paths that are not files will get 404)`,
        );
      }
    }
  }
  const paths = new Map<string, number>();
  site.redirects.forEach((r, j) => {
    const rp = `${p}.redirects[${j}]`;
    if (!r.path) return;
    const first = paths.get(r.path);
    if (first !== undefined) {
      err(`${rp}.path`, `duplicate redirect path "${r.path}" (also ${p}.redirects[${first}].path)`);
    } else paths.set(r.path, j);
    if (r.to && redirectsToItself(site, r.path, r.to)) {
      err(
        `${rp}.to`,
        `Cannot redirect "${r.path}" to "${r.to}": the target is matched by the same redirect ` +
          "(a loop); redirect www to the apex from a site of its own",
      );
    }
  });
}

/** Whether a request for `to` on this site would be answered by the same redirect again. */
function redirectsToItself(site: SiteConfig, path: string, to: string): boolean {
  let target = to;
  if (!to.startsWith("/")) {
    let url: URL;
    try {
      url = new URL(to);
    } catch {
      return false; // reported by the schema
    }
    const scheme = site.ssl.enabled ? "https:" : "http:";
    const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
    const names = [site.hostname, ...site.hostnames];
    if (url.protocol !== scheme || port !== site.port || !names.includes(url.hostname)) {
      return false;
    }
    target = url.pathname;
  }
  target = target.replace(/[?#].*$/, "");
  const base = path.endsWith("/") ? path.slice(0, -1) : path;
  return target === base || target.startsWith(base + "/");
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const ANY = new Set(["0.0.0.0", "::", "[::]", ""]);

function sameBind(a: string, b: string): boolean {
  return a === b || ANY.has(a) || ANY.has(b);
}

/** One address a site listens on; `path` is the key to blame for a clash. */
interface Bound {
  readonly site: number;
  readonly bind: string;
  readonly port: number;
  readonly path: string;
}

function checkListeners(config: Config, err: Report): void {
  // Port 0 asks for an ephemeral port per listener, so it never conflicts.
  const byListener = new Map<string, number[]>();
  const byPort = new Map<number, Bound[]>();
  const bound = (b: Bound) => byPort.set(b.port, [...(byPort.get(b.port) ?? []), b]);
  config.sites.forEach((s, i) => {
    // TLS sites also listen on their plain http_port (redirects, ACME challenges).
    const ssl = s.ssl;
    if (ssl.enabled && (ssl.redirectHttp || ssl.autoCert) && ssl.httpPort !== 0) {
      bound({ site: i, bind: s.bind, port: ssl.httpPort, path: `sites[${i}].ssl.http_port` });
    }
    if (s.port === 0) return;
    const key = `${s.bind} ${s.port}`;
    byListener.set(key, [...(byListener.get(key) ?? []), i]);
    bound({ site: i, bind: s.bind, port: s.port, path: `sites[${i}].bind` });
  });
  for (const list of byPort.values()) checkBinds(config, list, err);
  for (const indexes of byListener.values()) {
    checkHostnames(config, indexes, err);
    const first = config.sites[indexes[0]];
    let firstDefault = first.default ? indexes[0] : -1;
    for (const i of indexes.slice(1)) {
      const s = config.sites[i];
      if (s.ssl.enabled !== first.ssl.enabled) {
        err(
          `sites[${i}].ssl.enabled`,
          `sites "${first.name}" and "${s.name}" share ${s.bind}:${s.port} but only one has ssl ` +
            "enabled (one port speaks either TLS or plain HTTP)",
        );
      }
      if (s.default) {
        if (firstDefault >= 0) {
          err(
            `sites[${i}].default`,
            `two default sites on ${s.bind}:${s.port}: "${
              config.sites[firstDefault].name
            }" and "${s.name}"`,
          );
        } else firstDefault = i;
      }
    }
  }
  const m = config.management;
  if (m.enabled && m.port !== 0) {
    config.sites.forEach((s, i) => {
      if (s.port === m.port && sameBind(s.bind, m.host)) {
        err(
          "management.port",
          `Cannot use management port ${m.port}: site "${s.name}" (sites[${i}]) listens on ` +
            `${s.bind}:${s.port}`,
        );
      }
    });
  }
}

/**
 * Sites on one port bind either the same address (they share a listener) or disjoint ones: a
 * wildcard bind (`0.0.0.0`, `::`) next to a specific address on the same port cannot both listen.
 */
function checkBinds(config: Config, list: readonly Bound[], err: Report): void {
  list.forEach((b, k) => {
    const o = list.slice(0, k).find((x) => x.bind !== b.bind && sameBind(x.bind, b.bind));
    if (o === undefined) return;
    const [s, other] = [config.sites[b.site], config.sites[o.site]];
    err(
      b.path,
      `Cannot bind "${b.bind}" port ${b.port} for site "${s.name}": site "${other.name}" ` +
        `(sites[${o.site}]) binds "${o.bind}" on the same port and the addresses overlap ` +
        "(give both sites the same bind, or different ports)",
    );
  });
}

/** Two sites on one listener must not claim the same host name. */
function checkHostnames(config: Config, indexes: readonly number[], err: Report): void {
  const owner = new Map<string, number>();
  for (const i of indexes) {
    const s = config.sites[i];
    const names: [string, string][] = [[`sites[${i}].hostname`, s.hostname]];
    s.hostnames.forEach((h, k) => names.push([`sites[${i}].hostnames[${k}]`, h]));
    for (const [path, name] of names) {
      if (!name) continue;
      const o = owner.get(name);
      if (o === undefined) owner.set(name, i);
      else if (o !== i) {
        err(
          path,
          `host name "${name}" is already served by site "${config.sites[o].name}" on ` +
            `${s.bind}:${s.port}`,
        );
      }
    }
  }
}

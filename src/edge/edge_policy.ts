/**
 * The edge protection of one site or route as one object: runs access, rate limit, basic auth and
 * forward auth in that order (README "Protecting a site") and answers with the first refusal, or
 * lets the request through with the upstream-request changes of every rule merged.
 *
 * `compileSiteEdge` builds the policies of a site and of each of its routes once per config: a
 * route's table replaces the site's, a table the route does not write is the site's (the same
 * compiled object, so a site-wide rate limit is one set of buckets for static files and every
 * route that does not override it).
 *
 * @module
 */

import type { EdgeTables, SiteConfig } from "../config/types.ts";
import type { HttpRequest } from "../http1/types.ts";
import type { UpstreamClient, UpstreamTimeouts } from "../upstream/client.ts";
import { AccessList } from "./access.ts";
import { BasicAuth } from "./basic_auth.ts";
import type { BcryptVerifier } from "./bcrypt_verifier.ts";
import { ForwardAuth } from "./forward_auth.ts";
import { type BucketStoreFactory, RateLimit } from "./rate_limit.ts";
import type { EdgeCheck, EdgeUpstreamEdit, EdgeVerdict } from "./types.ts";

/** The checks of one site or route, run in order. */
export class EdgePolicy {
  readonly checks: readonly EdgeCheck[];

  /** `checks` must be in that order (compileSiteEdge builds them so). */
  constructor(checks: readonly EdgeCheck[]) {
    this.checks = checks;
  }

  /**
   * The verdict for one request: a refusal (send its response, contact no upstream; count
   * `rule`), changes to the upstream request, or null. Synchronous when every rule that ran
   * answered synchronously; never rejects.
   *
   * @param client the client address as resolved through trusted_proxies / a PROXY header
   */
  check(req: HttpRequest, client: string): EdgeVerdict | Promise<EdgeVerdict> {
    const checks = this.checks;
    let edit: EdgeUpstreamEdit | null = null;
    for (let i = 0; i < checks.length; i++) {
      const v = checks[i].check(req, client);
      if (v instanceof Promise) return this.#continue(v, i, req, client, edit);
      if (v === null) continue;
      if (v.refused) return v;
      edit = merge(edit, v);
    }
    return edit;
  }

  async #continue(
    pending: Promise<EdgeVerdict>,
    index: number,
    req: HttpRequest,
    client: string,
    edit: EdgeUpstreamEdit | null,
  ): Promise<EdgeVerdict> {
    const checks = this.checks;
    let v = await pending;
    for (let i = index;;) {
      if (v !== null) {
        if (v.refused) return v;
        edit = merge(edit, v);
      }
      if (++i >= checks.length) return edit;
      v = await checks[i].check(req, client);
    }
  }
}

function merge(a: EdgeUpstreamEdit | null, b: EdgeUpstreamEdit): EdgeUpstreamEdit {
  if (a === null) return b;
  return {
    refused: false,
    removeHeaders: [...a.removeHeaders, ...b.removeHeaders],
    addHeaders: [...a.addHeaders, ...b.addHeaders],
  };
}

/** What compiling a site's edge protection needs besides its config. */
export interface EdgeCompileOptions {
  /** The upstream client forward auth asks with. */
  readonly client: UpstreamClient;
  /** The site's proxy timeouts, which forward auth asks its service with. */
  readonly timeouts: UpstreamTimeouts;
  /** Rate-limit bucket stores. @default per-process stores */
  readonly stores?: BucketStoreFactory;
  /** @default the process's shared worker-thread verifier */
  readonly verifier?: BcryptVerifier;
  /** Told why a forward-auth service could not be asked. */
  readonly onForwardAuthError?: (err: unknown, url: string) => void;
}

/** The compiled edge protection of one site: null where no rule applies. */
export interface SiteEdge {
  /**
   * For requests no route matches (static files, 404s). Not for the plain-HTTP redirects and
   * ACME challenges of a TLS site: those answer before a site's protection runs.
   */
  readonly site: EdgePolicy | null;
  /** Indexed like `site.proxy.routes`. */
  readonly routes: readonly (EdgePolicy | null)[];
}

type Compiled = {
  access: AccessList | null;
  rateLimit: RateLimit | null;
  basicAuth: BasicAuth | null;
  forwardAuth: ForwardAuth | null;
};

/**
 * Compiles the edge protection of `site` and its routes. Throws when a table cannot be used
 * (an htpasswd file that became unreadable since the config was loaded).
 */
export function compileSiteEdge(site: SiteConfig, opts: EdgeCompileOptions): SiteEdge {
  const compile = (tables: EdgeTables, scope: string, inherit: Compiled | null): Compiled => {
    const same = <K extends keyof EdgeTables>(k: K) =>
      inherit !== null && tables[k] === null ? inherit[k] : undefined;
    const fa = tables.forwardAuth;
    return {
      access: same("access") ?? (tables.access ? new AccessList(tables.access) : null),
      rateLimit: same("rateLimit") ??
        (tables.rateLimit ? new RateLimit(tables.rateLimit, { scope, stores: opts.stores }) : null),
      basicAuth: same("basicAuth") ??
        (tables.basicAuth ? new BasicAuth(tables.basicAuth, { verifier: opts.verifier }) : null),
      forwardAuth: same("forwardAuth") ??
        (fa
          ? new ForwardAuth(fa, {
            client: opts.client,
            timeouts: opts.timeouts,
            onError: opts.onForwardAuthError && ((e) => opts.onForwardAuthError!(e, fa.url)),
          })
          : null),
    };
  };
  const policy = (c: Compiled): EdgePolicy | null => {
    const checks = [c.access, c.rateLimit, c.basicAuth, c.forwardAuth].filter(
      (x): x is NonNullable<typeof x> => x !== null,
    );
    return checks.length === 0 ? null : new EdgePolicy(checks);
  };
  const siteScope = `site/${site.name}`;
  const siteCompiled = compile(site, siteScope, null);
  return {
    site: policy(siteCompiled),
    routes: site.proxy.routes.map((r) =>
      policy(compile(r, `${siteScope}/route${r.path}`, siteCompiled))
    ),
  };
}

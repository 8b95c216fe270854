/**
 * The schema and the config interfaces describe the same keys: checked by `deno check` (the
 * assertions below are types), so a key added to one and not to the other, or built as another
 * type, fails type checking before any test runs.
 */

import { describe, it } from "node:test";
import { expect } from "expect";
import type { CONFIG_SCHEMA } from "./schema.ts";
import type { SchemaValue } from "./schema_nodes.ts";
import type * as T from "./types.ts";

/** `true` when A and B are assignable both ways; otherwise a string that says which way fails. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : "interface lacks or differs")
  : "schema lacks or differs";

/** `true` when A (the interface's type) is B (the schema's) or narrower. */
type Narrower<A, B> = [A] extends [B] ? true : "interface is not narrower";

/** `T` with `K` left out: the fields a check narrows further than the schema kind says. */
type Without<T, K extends PropertyKey> = Omit<T, K>;

type Built = SchemaValue<typeof CONFIG_SCHEMA>;
type Site = Built["sites"][number];
type Proxy = Site["proxy"];

/** Each entry must be `true`. */
const agreement: {
  server: Same<Built["server"], T.ServerConfig>;
  management: Same<Built["management"], T.ManagementConfig>;
  logging: Same<Built["logging"], T.LoggingConfig>;
  cluster: Same<Built["cluster"], T.ClusterConfig | null>;
  access: Same<Site["access"], T.AccessConfig | null>;
  rateLimit: Same<Site["rateLimit"], T.RateLimitConfig | null>;
  basicAuth: Same<Site["basicAuth"], T.BasicAuthConfig | null>;
  forwardAuth: Same<Site["forwardAuth"], T.ForwardAuthConfig | null>;
  upstream: Same<Proxy["upstreams"][number], T.UpstreamConfig>;
  route: Same<Proxy["routes"][number], T.RouteConfig>;
  proxy: Same<Proxy, T.ProxyConfig>;
  ssl: Same<Site["ssl"], T.SslConfig>;
  // Narrowed by their checks: algorithms to known codings, status to redirect statuses.
  compression: Same<
    Without<Site["compression"], "algorithms">,
    Without<T.CompressionConfig, "algorithms">
  >;
  algorithms: Narrower<T.CompressionConfig["algorithms"], Site["compression"]["algorithms"]>;
  redirect: Same<Without<Site["redirects"][number], "status">, Without<T.RedirectConfig, "status">>;
  status: Narrower<T.RedirectConfig["status"], Site["redirects"][number]["status"]>;
  // errorPages: the loader replaces each path by the page it read.
  site: Same<
    Without<Site, "compression" | "redirects" | "errorPages">,
    Without<T.SiteConfig, "compression" | "redirects" | "errorPages">
  >;
  siteKeys: Same<keyof Site, keyof T.SiteConfig>;
  root: Same<Without<Built, "sites">, Without<T.Config, "sites" | "source">>;
} = {
  server: true,
  management: true,
  logging: true,
  cluster: true,
  access: true,
  rateLimit: true,
  basicAuth: true,
  forwardAuth: true,
  upstream: true,
  route: true,
  proxy: true,
  ssl: true,
  compression: true,
  algorithms: true,
  redirect: true,
  status: true,
  site: true,
  siteKeys: true,
  root: true,
};

describe("config schema and types", () => {
  it("agree on every key (checked by the type checker)", () => {
    expect(Object.values(agreement).every((v) => v === true)).toBe(true);
  });
});

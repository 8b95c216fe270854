/**
 * The edge-protection tables (README "Protecting a site"), as schema fields: `access`,
 * `rate_limit`, `basic_auth` and `forward_auth`. Each stands under a site and under a route (the
 * same fields), and each is null in the built config unless written.
 *
 * @module
 */

import { bcryptHashProblem, userNameProblem } from "../edge/bcrypt_hash.ts";
import { cidrCheck } from "./schema_checks.ts";
import { type Check, optionalTable } from "./schema_nodes.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Largest `rate` (requests per second) and `burst`. */
export const RATE_LIMIT_MAX = 1_000_000;

const headerNameCheck: Check<string> = (v) =>
  HEADER_NAME.test(v) ? undefined : `Cannot use header name "${v}": not a valid HTTP header name`;

const rateLimitKeyCheck: Check<string> = (v) => {
  if (v === "ip") return undefined;
  if (v.startsWith("header:")) {
    const name = v.slice("header:".length);
    return HEADER_NAME.test(name)
      ? undefined
      : `Cannot use key "${v}": "${name}" is not a valid HTTP header name`;
  }
  return `Cannot use key "${v}": expected "ip" or "header:NAME"`;
};

/** The forward_auth URL: http(s), no credentials, no fragment (a query is kept). */
export const forwardAuthUrlCheck: Check<string> = (v) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `Cannot use forward_auth url "${v}": not a valid URL`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return `Cannot use forward_auth url "${v}": scheme must be http or https`;
  }
  if (u.username || u.password) {
    return `Cannot use forward_auth url "${v}": credentials in URLs are not supported`;
  }
  if (u.hash) return `Cannot use forward_auth url "${v}": a fragment is not allowed`;
  return undefined;
};

const realmCheck: Check<string> = (v) =>
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f]/.test(v)
    ? `Cannot use realm ${JSON.stringify(v)}: control character`
    : undefined;

/** The four tables, for spreading into a site's and a route's fields. */
export function edgeTables() {
  return {
    access: optionalTable({
      allow: { type: "string[]", default: [], each: cidrCheck },
      deny: { type: "string[]", default: [], each: cidrCheck },
    }),
    rate_limit: optionalTable({
      rate: {
        type: "number",
        required: true,
        min: 0,
        max: RATE_LIMIT_MAX,
        check: (v) => v > 0 ? undefined : `Cannot use rate ${v}: must be > 0 requests per second`,
      },
      burst: {
        type: "int",
        min: 1,
        max: RATE_LIMIT_MAX,
        default: (self) => Math.min(RATE_LIMIT_MAX, Math.max(1, Math.ceil(self.rate as number))),
      },
      key: { type: "string", default: "ip", check: rateLimitKeyCheck },
    }),
    basic_auth: optionalTable({
      realm: { type: "string", default: "restricted", check: realmCheck },
      users: {
        type: "string-map",
        default: {},
        entry: (user, hash) => {
          const u = userNameProblem(user);
          if (u) return u;
          const h = bcryptHashProblem(hash);
          return h ? `Cannot use the hash of user "${user}": it ${h}` : undefined;
        },
      },
      htpasswd_file: { type: "string", default: "", path: true },
      forward_authorization: { type: "bool", default: false },
    }),
    forward_auth: optionalTable({
      url: { type: "string", required: true, check: forwardAuthUrlCheck },
      copy_headers: { type: "string[]", default: [], each: headerNameCheck },
    }),
  };
}

/**
 * `[sites.access]`: allow and deny lists of addresses and CIDRs (IPv4 and IPv6) applied to the
 * client address as resolved through trusted_proxies. Deny wins over allow; a non-empty allow
 * list admits only its members. Refused: 403.
 *
 * @module
 */

import type { AccessConfig } from "../config/types.ts";
import type { HttpRequest } from "../http1/types.ts";
import { CidrSet } from "../net/cidr.ts";
import { refusalResponse } from "./responses.ts";
import type { EdgeCheck, EdgeRefusal } from "./types.ts";

/** The compiled access list of one site or route. */
export class AccessList implements EdgeCheck {
  readonly rule = "access" as const;
  readonly #allow: CidrSet;
  readonly #deny: CidrSet;
  readonly #refusal: EdgeRefusal = {
    refused: true,
    rule: "access",
    response: refusalResponse(403),
  };

  constructor(config: AccessConfig) {
    this.#allow = new CidrSet(config.allow);
    this.#deny = new CidrSet(config.deny);
  }

  /** Whether `client` may enter. An address that does not parse matches no list. */
  admits(client: string): boolean {
    if (this.#deny.has(client)) return false;
    return this.#allow.empty || this.#allow.has(client);
  }

  check(_req: HttpRequest, client: string): EdgeRefusal | null {
    return this.admits(client) ? null : this.#refusal;
  }
}

/**
 * `bws_refused_total{site,rule}`: requests an edge-protection rule refused. Counting
 * is on the refusal path of an attack, so a call is two Map lookups and an increment; label
 * strings are built when a site is first seen.
 *
 * @module
 */

import { EDGE_RULES, type EdgeRule } from "../edge/types.ts";
import { header, labels } from "./prom_text.ts";

const RULE_INDEX: ReadonlyMap<string, number> = new Map(EDGE_RULES.map((r, i) => [r, i]));

interface SiteRefusals {
  readonly counts: Float64Array;
  /** `bws_refused_total{site="…",rule="…"} ` per rule, ready for rendering. */
  readonly prefixes: readonly string[];
}

/** Refusal counts per site and rule. */
export class RefusalCounter {
  readonly #sites = new Map<string, SiteRefusals>();

  /** Counts one refused request. */
  record(site: string, rule: EdgeRule): void {
    let s = this.#sites.get(site);
    if (s === undefined) {
      s = {
        counts: new Float64Array(EDGE_RULES.length),
        prefixes: EDGE_RULES.map((r) =>
          `bws_refused_total${labels([["site", site], ["rule", r]])} `
        ),
      };
      this.#sites.set(site, s);
    }
    s.counts[RULE_INDEX.get(rule)!]++;
  }

  /** Refusals of `site` by `rule` so far. */
  count(site: string, rule: EdgeRule): number {
    return this.#sites.get(site)?.counts[RULE_INDEX.get(rule)!] ?? 0;
  }

  /** The family, with every rule of each site that refused anything (zeros included). */
  render(out: string[]): void {
    out.push(
      header("bws_refused_total", "counter", "Requests refused by an edge rule, by site and rule."),
    );
    for (const s of this.#sites.values()) {
      for (let i = 0; i < s.prefixes.length; i++) out.push(`${s.prefixes[i]}${s.counts[i]}\n`);
    }
  }
}

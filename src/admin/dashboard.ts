/**
 * The dashboard page served at `GET /` on the management port: one self-contained HTML file
 * (`dashboard.html`, inline CSS, JavaScript and SVG, no external asset) that polls
 * `/api/status` and `/api/stats`. It is embedded in the module graph (a text import), so
 * `deno compile` carries it.
 *
 * The page is served without the API key; it only learns whether one is required (the same
 * fact a 401 would tell) and asks the user for it. Its Content-Security-Policy allows exactly
 * its own inline script and style (by hash) and requests to the same origin.
 *
 * @module
 */

import { createHash } from "node:crypto";
import template from "./dashboard.html" with { type: "text" };

/** The page and the headers it is served with. */
export interface DashboardPage {
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

const KEY_PLACEHOLDER = "__BWS_API_KEY__";

function sha256Sources(html: string, tag: "script" | "style"): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
  return [...html.matchAll(re)].map((m) =>
    `'sha256-${createHash("sha256").update(m[1]).digest("base64")}'`
  );
}

function build(keyRequired: boolean): DashboardPage {
  if (!template.includes(KEY_PLACEHOLDER)) {
    throw new Error(`Cannot build the dashboard page: "${KEY_PLACEHOLDER}" is missing`);
  }
  const html = template.replace(KEY_PLACEHOLDER, keyRequired ? "required" : "none");
  const csp = [
    "default-src 'none'",
    `script-src ${sha256Sources(html, "script").join(" ")}`,
    `style-src ${sha256Sources(html, "style").join(" ")}`,
    "img-src data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    html,
    headers: {
      "Content-Security-Policy": csp,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  };
}

const pages = new Map<boolean, DashboardPage>();

/** The dashboard page for a management API with (`keyRequired`) or without an `api_key`. */
export function dashboardPage(keyRequired: boolean): DashboardPage {
  let page = pages.get(keyRequired);
  if (page === undefined) {
    page = build(keyRequired);
    pages.set(keyRequired, page);
  }
  return page;
}

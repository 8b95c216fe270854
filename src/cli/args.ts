/**
 * Command-line parsing for `bws`, as a pure function: argv in, what to do out.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorText } from "../log/error_text.ts";

/** What the command line asks for. */
export type CliCommand =
  | {
    readonly kind: "run";
    /** undefined: look for ./bws.toml, then ./config.toml. */
    readonly configPath: string | undefined;
    readonly watch: boolean;
    readonly verbose: boolean;
  }
  | { readonly kind: "check"; readonly configPath: string | undefined; readonly verbose: boolean }
  | {
    readonly kind: "static";
    readonly dir: string;
    /** @default 8080 */
    readonly port: number;
    /** @default "0.0.0.0" */
    readonly bind: string;
    readonly verbose: boolean;
  }
  | { readonly kind: "help" }
  | { readonly kind: "version" }
  | { readonly kind: "usage-error"; readonly message: string };

/** Default port of `bws DIR`. */
export const DEFAULT_STATIC_PORT = 8080;

/** The text printed by `bws --help`. */
export const USAGE = `Usage:
  bws [-c FILE] [--watch] [-v]     run with FILE (default ./bws.toml, else ./config.toml)
  bws check [-c FILE]              validate the config, print a summary (alias: --dry-run)
  bws DIR [-p PORT] [-b ADDR]      serve DIR as a static site (default port ${DEFAULT_STATIC_PORT})
  bws --version | --help

Options:
  -c, --config FILE   config file to use
  -p, --port PORT     port for \`bws DIR\` (0 picks a free port)
  -b, --bind ADDR     listen address for \`bws DIR\` (default 0.0.0.0)
      --watch         reload when the config file changes
      --dry-run       same as \`check\`
  -v, --verbose       log at debug level
  -h, --help          show this help
  -V, --version       print the version

Signals: SIGHUP reloads the config, SIGTERM/SIGINT shut down gracefully.
Exit codes: 0 ok, 1 invalid config or failure to start, 2 usage error.`;

const usageError = (message: string): CliCommand => ({ kind: "usage-error", message });

/** Parses the arguments after the program name. Never throws. */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        port: { type: "string", short: "p" },
        bind: { type: "string", short: "b" },
        verbose: { type: "boolean", short: "v", default: false },
        watch: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    });
  } catch (e) {
    return usageError(cleanParseError(errorText(e)));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  const verbose = v.verbose;
  if (v.config === "") return usageError("--config needs a file name");

  if (positionals[0] === "check" || v["dry-run"]) {
    const extra = positionals.slice(positionals[0] === "check" ? 1 : 0);
    if (extra.length > 0) return usageError(`unexpected argument "${extra[0]}" for check`);
    if (v.port !== undefined || v.bind !== undefined) {
      return usageError("--port and --bind are only for `bws DIR`");
    }
    if (v.watch) return usageError("--watch cannot be combined with check");
    return { kind: "check", configPath: v.config, verbose };
  }

  if (positionals.length > 1) return usageError(`unexpected argument "${positionals[1]}"`);
  if (positionals.length === 1) {
    if (v.config !== undefined) return usageError("give either DIR or --config, not both");
    if (v.watch) return usageError("--watch needs a config file, not DIR");
    let port = DEFAULT_STATIC_PORT;
    if (v.port !== undefined) {
      if (!/^\d{1,5}$/.test(v.port) || Number(v.port) > 65535) {
        return usageError(`Cannot use port "${v.port}": expected a number 0..65535`);
      }
      port = Number(v.port);
    }
    if (v.bind === "") return usageError("--bind needs an address");
    return { kind: "static", dir: positionals[0], port, bind: v.bind ?? "0.0.0.0", verbose };
  }

  if (v.port !== undefined || v.bind !== undefined) {
    return usageError("--port and --bind need a DIR to serve (`bws DIR -p PORT`)");
  }
  return { kind: "run", configPath: v.config, watch: v.watch, verbose };
}

/** node:util messages mention "parseArgs"/"positional"; keep only what a user needs. */
function cleanParseError(message: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /Option '([^']+)' argument missing/.exec(message);
  if (missing) return `option ${missing[1].replace(/ <value>$/, "")} needs a value`;
  return message.split(". ")[0];
}

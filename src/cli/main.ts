/**
 * The `bws` command: argument handling, `check`, starting the server, signals and --watch.
 * `cli.ts` at the repository root calls `runCli`.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { configFromObject, loadConfigFileWithWarnings, type LoadResult } from "../config/load.ts";
import { summarizeConfig } from "../config/summary.ts";
import { type Config, ConfigError, type ConfigIssue, formatIssues } from "../config/types.ts";
import type { ReloadResult, ServerHandle } from "../server/types.ts";
import { parseCliArgs, USAGE } from "./args.ts";
import { preflightConfig } from "../server/preflight.ts";
import { errorText } from "../log/error_text.ts";

/** The version printed by `bws --version`. */
export const VERSION: string = denoJson.version;

/** Config files tried, in order, when no `-c` is given. */
export const DEFAULT_CONFIG_FILES = ["bws.toml", "config.toml"] as const;

/** Runs the command line `argv` and resolves with the process exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const cmd = parseCliArgs(argv);
  switch (cmd.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(`bws ${VERSION}`);
      return 0;
    case "usage-error":
      console.error(`bws: ${cmd.message}\nRun \`bws --help\` for usage.`);
      return 2;
    case "check": {
      const path = cmd.configPath ?? findDefaultConfig();
      if (path === undefined) return noConfig();
      const loaded = await loadOrReport(path);
      if (!loaded) return 1;
      if (loaded.config.cluster) {
        // Loaded only for [cluster]: the Redis client is not needed otherwise.
        const { clusterWarnings } = await import("../cluster/redis_probe.ts");
        printWarnings(loaded.config.source, await clusterWarnings(loaded.config));
      }
      console.log(summarizeConfig(loaded.config));
      console.log(`\n${loaded.config.source}: OK`);
      return 0;
    }
    case "run": {
      const path = cmd.configPath ?? findDefaultConfig();
      if (path === undefined) return noConfig();
      const loaded = await loadOrReport(path);
      if (!loaded) return 1;
      return await serve(loaded.config, { verbose: cmd.verbose, watch: cmd.watch });
    }
    case "static": {
      const dir = resolve(cmd.dir);
      try {
        if (!(await Deno.stat(dir)).isDirectory) throw new Error("not a directory");
      } catch (e) {
        const why = e instanceof Deno.errors.NotFound ? "no such directory" : errorText(e);
        console.error(`Cannot serve "${cmd.dir}": ${why}`);
        return 1;
      }
      const config = configFromObject({
        sites: [{
          name: "static",
          hostname: "localhost",
          port: cmd.port,
          bind: cmd.bind,
          static_dir: dir,
          default: true,
        }],
      });
      return await serve(config, { verbose: cmd.verbose, watch: false });
    }
  }
}

function noConfig(): number {
  console.error(
    `bws: no config file given and neither ./${DEFAULT_CONFIG_FILES.join(" nor ./")} exists\n\n` +
      USAGE,
  );
  return 2;
}

function findDefaultConfig(): string | undefined {
  for (const name of DEFAULT_CONFIG_FILES) {
    try {
      if (Deno.statSync(name).isFile) return name;
    } catch {
      // not there: try the next one
    }
  }
  return undefined;
}

/**
 * Loads a config file and checks the files a start needs (certificates, the log file's
 * directory); prints its errors (and returns null) or its warnings.
 */
async function loadOrReport(path: string): Promise<LoadResult | null> {
  let loaded: LoadResult;
  try {
    loaded = await loadConfigFileWithWarnings(path);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return reportErrors(e.message, e.issues.length);
  }
  printWarnings(loaded.config.source, loaded.warnings);
  const problems = await preflightConfig(loaded.config);
  if (problems.length > 0) {
    return reportErrors(formatIssues(loaded.config.source, problems), problems.length);
  }
  return loaded;
}

function reportErrors(text: string, n: number): null {
  console.error(text);
  console.error(`bws: ${n} error${n === 1 ? "" : "s"} in config`);
  return null;
}

function printWarnings(file: string, warnings: readonly ConfigIssue[]): void {
  if (warnings.length === 0) return;
  console.error(
    formatIssues(file, warnings.map((w) => ({ ...w, message: `warning: ${w.message}` }))),
  );
}

/** Starts the server and keeps it running until a shutdown signal; returns the exit code. */
async function serve(config: Config, opts: { verbose: boolean; watch: boolean }): Promise<number> {
  let handle: ServerHandle;
  try {
    const { startServer } = await import("../server/server.ts");
    handle = await startServer(config, opts.verbose ? { logLevel: "debug" } : {});
  } catch (e) {
    console.error(`bws: ${errorText(e)}`);
    return 1;
  }
  const cleanups: (() => void)[] = [];
  const reload = async (why: string) => {
    if (!config.source) {
      console.error(`bws: ${why}: nothing to reload (no config file)`);
      return;
    }
    printReload(config.source, why, await handle.reloadFromSource());
  };
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.error(`bws: ${signal} again, exiting now`);
      Deno.exit(1);
    }
    stopping = true;
    console.error(`bws: ${signal}: shutting down`);
    for (const c of cleanups) c();
    await handle.shutdown();
    Deno.exit(0);
  };
  cleanups.push(onSignal("SIGHUP", () => void reload("SIGHUP")));
  cleanups.push(onSignal("SIGTERM", () => void stop("SIGTERM")));
  cleanups.push(onSignal("SIGINT", () => void stop("SIGINT")));
  if (opts.watch && config.source) cleanups.push(watchFile(config.source, () => reload("change")));

  // Announced once signals and the file watch are in place: a script that sends SIGHUP or edits
  // the config as soon as it reads "listening on" must not find bws deaf to it (SIGHUP's default
  // would end the process).
  for (const a of handle.addresses) {
    const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
    console.error(
      `bws: listening on ${a.tls ? "https" : "http"}://${host}:${a.port} (${a.sites.join(", ")})`,
    );
  }
  if (handle.managementAddress) {
    const m = handle.managementAddress;
    console.error(`bws: management API on http://${m.hostname}:${m.port}`);
  }

  await handle.finished;
  for (const c of cleanups) c();
  return 0;
}

function printReload(file: string, why: string, result: ReloadResult): void {
  if (result.ok) {
    console.error(`bws: ${why}: config reloaded (generation ${result.generation})`);
  } else {
    console.error(formatIssues(file, result.errors));
    console.error(`bws: ${why}: reload failed, still running the previous config`);
  }
}

/** Adds a signal listener where the platform has the signal; returns its removal. */
function onSignal(signal: Deno.Signal, fn: () => void): () => void {
  try {
    Deno.addSignalListener(signal, fn);
    return () => Deno.removeSignalListener(signal, fn);
  } catch {
    return () => {}; // e.g. SIGHUP on Windows
  }
}

/**
 * Calls `onChange` (debounced by `debounceMs`) when `file` changes. Watches the directory, not
 * the file, because editors replace files by renaming, which ends a watch on the file itself.
 *
 * @param debounceMs quiet time before reacting @default 200
 */
export function watchFile(file: string, onChange: () => unknown, debounceMs = 200): () => void {
  const name = basename(file);
  const watcher = Deno.watchFs(dirname(file), { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const event of watcher) {
        if (!event.paths.some((p) => basename(p) === name)) continue;
        clearTimeout(timer);
        timer = setTimeout(() => void onChange(), debounceMs);
      }
    } catch {
      // closed
    }
  })();
  return () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch {
      // already closed
    }
  };
}

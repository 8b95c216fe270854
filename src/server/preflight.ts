/**
 * The file-system checks a start would trip over, run on a loaded config without starting
 * anything: certificate files (read and parsed as at startup) and the log file's directory.
 * Read-only: never creates the log file or a directory.
 *
 * @module
 */

import { dirname } from "node:path";
import { findPosition, scanKeyPositions } from "../config/positions.ts";
import type { Config, ConfigIssue } from "../config/types.ts";
import { errorText } from "../log/error_text.ts";

/** One problem found before starting: the key path it comes from and a startup-style message. */
export interface PreflightIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Every problem a start with `config` would hit in the file system, in file order, with line and
 * column where the config file has them (read from `config.source`). Empty when all is well.
 */
export async function preflightConfig(config: Config): Promise<ConfigIssue[]> {
  const issues = [...await checkCertificates(config), ...checkLogFile(config)];
  return await locate(config.source, issues);
}

/** Certificate and key files of every TLS site that uses files (not ACME). */
async function checkCertificates(config: Config): Promise<PreflightIssue[]> {
  const issues: PreflightIssue[] = [];
  const texts = new Map<string, Promise<string | Error>>();
  for (const [i, site] of config.sites.entries()) {
    const ssl = site.ssl;
    // The same sites CertificateSet.prepare loads at startup.
    if (!ssl.enabled || ssl.autoCert || !ssl.certFile || !ssl.keyFile) continue;
    const p = `sites[${i}].ssl`;
    // node:crypto (behind the parser) is loaded only for configs with certificate files.
    const { assertNotExpired, parseCertificatePair, readPemFile } = await import(
      "../tls/certs.ts"
    );
    // Startup's own reader and checks, with each file read once and both problems reported.
    const read = (file: string, what: string) => {
      const key = `${what}\n${file}`;
      let text = texts.get(key);
      if (!text) texts.set(key, text = readPemFile(file, what).catch((e: Error) => e));
      return text;
    };
    const cert = await read(ssl.certFile, "certificate");
    const key = await read(ssl.keyFile, "key");
    if (cert instanceof Error) issues.push({ path: `${p}.cert_file`, message: cert.message });
    if (key instanceof Error) issues.push({ path: `${p}.key_file`, message: key.message });
    if (cert instanceof Error || key instanceof Error) continue;
    try {
      assertNotExpired(parseCertificatePair(cert, key, ssl.certFile), ssl.certFile);
    } catch (e) {
      const message = errorText(e);
      // "key is not …" / "key does not match …" are about key_file; the rest about cert_file.
      const aboutKey = /": key /.test(message);
      issues.push({ path: `${p}.${aboutKey ? "key_file" : "cert_file"}`, message });
    }
  }
  return issues;
}

/**
 * The log file startup opens for appending (creating it if missing; its directory must exist).
 * Same wording as src/log/sink.ts.
 */
function checkLogFile(config: Config): PreflightIssue[] {
  const { output, filePath } = config.logging;
  if (output !== "file" || !filePath) return []; // an empty file_path is a config error already
  const fail = (detail: string) => [{
    path: "logging.file_path",
    message: `Cannot open log file "${filePath}": ${detail}`,
  }];
  const file = statOrError(filePath);
  if (file instanceof Deno.errors.NotFound) {
    const dir = statOrError(dirname(filePath));
    if (dir instanceof Deno.errors.NotFound) {
      return fail(`directory "${dirname(filePath)}" does not exist`);
    }
    if (dir instanceof Error) return fail(dir.message);
    if (!dir.isDirectory) return fail(`"${dirname(filePath)}" is not a directory`);
    return [];
  }
  if (file instanceof Error) return fail(file.message);
  if (file.isDirectory) return fail("is a directory");
  if (!file.isFile || !mayWrite(filePath)) return [];
  // Opening an existing file for appending, without create, changes nothing; it is the only
  // way to ask the kernel (root may write where the mode bits say no).
  try {
    Deno.openSync(filePath, { append: true }).close();
  } catch (err) {
    return fail(
      err instanceof Deno.errors.PermissionDenied ? "permission denied" : errorText(err),
    );
  }
  return [];
}

function statOrError(path: string): Deno.FileInfo | Error {
  try {
    return Deno.statSync(path);
  } catch (err) {
    return err as Error;
  }
}

/** Whether this process has Deno's write permission for `path` (`deno task check` has not). */
function mayWrite(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "write", path }).state === "granted";
  } catch {
    return false;
  }
}

/** Adds line/column from the config file and sorts by them, as the config loader does. */
async function locate(source: string, issues: PreflightIssue[]): Promise<ConfigIssue[]> {
  if (issues.length === 0) return [];
  let text = "";
  try {
    if (source) text = await Deno.readTextFile(source);
  } catch {
    // positions are a nicety: report without them
  }
  const positions = scanKeyPositions(text);
  return issues
    .map((i, n) => {
      const pos = findPosition(positions, i.path);
      const issue: ConfigIssue = pos ? { ...i, line: pos.line, column: pos.column } : { ...i };
      return { issue, n };
    })
    .sort((a, b) =>
      (a.issue.line ?? 0) - (b.issue.line ?? 0) ||
      (a.issue.column ?? 0) - (b.issue.column ?? 0) || a.n - b.n
    )
    .map((l) => l.issue);
}

/**
 * htpasswd files as `htpasswd -B` writes them: one `user:bcrypt-hash` per line; blank lines and
 * lines starting with "#" are ignored. Read synchronously, on every config load, so a reload
 * picks up a changed file and `bws check` reports its problems with their line numbers.
 *
 * @module
 */

import { bcryptHashProblem, userNameProblem } from "./bcrypt_hash.ts";
import { fileErrorText } from "../log/error_text.ts";

/** The users of one file, or every problem found in it (none are partly used). */
export type HtpasswdResult =
  | { readonly ok: true; readonly users: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly problems: readonly string[] };

/** Parses htpasswd text; `file` only names it in messages. */
export function parseHtpasswd(text: string, file: string): HtpasswdResult {
  const users = new Map<string, string>();
  const problems: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const bad = (detail: string) =>
      problems.push(`Cannot use htpasswd file "${file}": line ${i + 1}: ${detail}`);
    const colon = line.indexOf(":");
    if (colon < 0) {
      bad('expected "user:hash"');
      continue;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const userProblem = userNameProblem(user);
    if (userProblem) {
      bad(userProblem);
      continue;
    }
    const hashProblem = bcryptHashProblem(hash);
    if (hashProblem) bad(`the hash of user "${user}" ${hashProblem}`);
    else if (users.has(user)) bad(`user "${user}" is listed twice`);
    else users.set(user, hash);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, users };
}

/** Reads and parses an htpasswd file; a read failure is one problem. */
export function readHtpasswdFileSync(path: string): HtpasswdResult {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    return { ok: false, problems: [`Cannot read htpasswd file "${path}": ${fileErrorText(e)}`] };
  }
  return parseHtpasswd(text, path);
}

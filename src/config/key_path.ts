/**
 * Key paths as shown in messages: `sites[1].proxy.routes[0].upstream`. Keys that are not TOML
 * bare keys are quoted: `sites[0].headers."X Odd"`.
 *
 * @module
 */

const BARE = /^[A-Za-z0-9_-]+$/;

/** Appends a table key to a path. */
export function childPath(parent: string, key: string): string {
  const k = BARE.test(key) ? key : JSON.stringify(key);
  return parent ? `${parent}.${k}` : k;
}

/** Appends an array index to a path. */
export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** The enclosing path (`a.b[2].c` → `a.b[2]` → `a.b` → `a` → ""), or null at the root. */
export function parentPath(path: string): string | null {
  if (path === "") return null;
  if (path.endsWith("]")) return path.slice(0, path.lastIndexOf("["));
  if (path.endsWith('"')) {
    // quoted last key: find its opening quote (keys never contain unescaped quotes in JSON form)
    let i = path.length - 2;
    while (i > 0 && !(path[i] === '"' && path[i - 1] !== "\\")) i--;
    return i > 0 ? path.slice(0, i - 1) : "";
  }
  const dot = path.lastIndexOf(".");
  return dot < 0 ? "" : path.slice(0, dot);
}

/**
 * What a bcrypt hash looks like as `htpasswd -B` and the bcrypt libraries write it:
 * `$2y$10$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
 *
 * @module
 */

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** Whether `hash` is a bcrypt hash of a supported variant ($2a$, $2b$, $2y$) and cost (4-31). */
export function isBcryptHash(hash: string): boolean {
  const m = BCRYPT.exec(hash);
  if (m === null) return false;
  const cost = Number(m[1]);
  return cost >= 4 && cost <= 31;
}

/** The cost of a bcrypt hash (`isBcryptHash` must hold). */
export function bcryptCost(hash: string): number {
  return Number(hash.slice(4, 6));
}

/**
 * Why `hash` cannot be used, or undefined when it is a bcrypt hash. The message never repeats
 * the hash (it is a secret of sorts) beyond its scheme prefix.
 */
export function bcryptHashProblem(hash: string): string | undefined {
  if (isBcryptHash(hash)) return undefined;
  const prefix = /^\$[0-9a-z]+\$/.exec(hash)?.[0];
  if (prefix === "$apr1$") return "is an MD5 (apr1) hash; make a bcrypt one with `htpasswd -B`";
  if (prefix === "$5$" || prefix === "$6$") return "is a SHA-crypt hash; bcrypt is required";
  if (/^\$2[aby]\$/.test(hash)) {
    return "is a malformed bcrypt hash (expected $2y$NN$ + 53 characters)";
  }
  return "is not a bcrypt hash ($2a$, $2b$ or $2y$; `htpasswd -B` makes one)";
}

/** Why `user` cannot be a Basic auth user name, or undefined. */
export function userNameProblem(user: string): string | undefined {
  if (user === "") return "a user name must not be empty";
  if (user.includes(":")) return `Cannot use user name "${user}": it contains ":"`;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) {
    return `Cannot use user name ${JSON.stringify(user)}: control character`;
  }
  return undefined;
}

/**
 * Test helper: a private CA and leaf certificates made with the `openssl` command.
 *
 * @module
 */

/** Files of one leaf certificate. */
export interface TestLeaf {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A site's `[sites.ssl]` table serving `leaf` (TOML, ends with a newline). */
export function sslToml(leaf: { readonly certFile: string; readonly keyFile: string }): string {
  return `[sites.ssl]\nenabled = true\ncert_file = "${leaf.certFile}"\nkey_file = "${leaf.keyFile}"\n`;
}

/** A private CA in a temp directory that issues leaf certificates. */
export class TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  #n = 0;

  private constructor(dir: string, caPem: string) {
    this.dir = dir;
    this.caFile = `${dir}/ca.crt`;
    this.caPem = caPem;
  }

  /** Makes the CA in a new temp directory. */
  static async create(): Promise<TestPki> {
    const dir = await Deno.makeTempDir({ prefix: "bws_tls_" });
    await makeCa(dir, "ca.key", "ca.crt", 30, "bws test CA");
    await Deno.mkdir(`${dir}/db`);
    await Deno.writeTextFile(`${dir}/db/index.txt`, "");
    await Deno.writeTextFile(`${dir}/db/serial`, "1000\n");
    await Deno.writeTextFile(
      `${dir}/ca.cnf`,
      "[ca]\ndefault_ca=d\n[d]\ndir=db\ndatabase=db/index.txt\nnew_certs_dir=db\n" +
        "serial=db/serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\n" +
        "unique_subject=no\n[p]\ncommonName=supplied\n",
    );
    return new TestPki(dir, await Deno.readTextFile(`${dir}/ca.crt`));
  }

  /**
   * Issues a leaf for `cn` with the given subjectAltName entries (`DNS:a.test`, `IP:127.0.0.1`).
   * @param validity start and end as `YYYYMMDDHHMMSSZ`. @default now until 30 days on
   */
  async issue(
    cn: string,
    san: string[],
    validity?: { start: string; end: string },
  ): Promise<TestLeaf> {
    const base = `leaf${++this.#n}`;
    await openssl(this.dir, [
      "req",
      "-new",
      ...NEW_P256_KEY,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.csr`,
      "-subj",
      `/CN=${cn}`,
      "-addext",
      `subjectAltName=${san.join(",")}`,
    ]); // deno-fmt-ignore
    const dates = validity
      ? ["-startdate", validity.start, "-enddate", validity.end]
      : ["-days", "30"];
    await openssl(this.dir, [
      "ca",
      "-batch",
      "-notext",
      "-config",
      "ca.cnf",
      "-cert",
      "ca.crt",
      "-keyfile",
      "ca.key",
      "-in",
      `${base}.csr`,
      "-out",
      `${base}.crt`,
      ...dates,
    ]); // deno-fmt-ignore
    const certFile = `${this.dir}/${base}.crt`;
    const keyFile = `${this.dir}/${base}.key`;
    return {
      certFile,
      keyFile,
      certPem: await Deno.readTextFile(certFile),
      keyPem: await Deno.readTextFile(keyFile),
    };
  }

  /** Deletes the directory. */
  async remove(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Arguments of `openssl req` that make a new P-256 key, unencrypted. */
export const NEW_P256_KEY: readonly string[] = [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
];

/** Makes a self-signed P-256 CA in `dir`: `key` and `cert` files, valid for `days`. */
export async function makeCa(
  dir: string,
  key: string,
  cert: string,
  days: number,
  cn: string,
): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    ...NEW_P256_KEY,
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    String(days),
    "-subj",
    `/CN=${cn}`,
  ]); // deno-fmt-ignore
}

/** Runs `openssl` in `cwd`; returns its output, or throws with its error output. */
export async function openssl(cwd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot run "openssl ${args[0]}": ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

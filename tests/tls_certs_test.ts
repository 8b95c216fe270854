import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { loadCertificateFiles, parseCertificatePair } from "../src/tls/certs.ts";
import { type TestLeaf, TestPki } from "./helpers/test_pki.ts";

describe("loadCertificateFiles", () => {
  let pki: TestPki;
  let a: TestLeaf;
  let b: TestLeaf;
  before(async () => {
    pki = await TestPki.create();
    a = await pki.issue("a.test", ["DNS:a.test", "DNS:*.a.test", "IP:127.0.0.1"]);
    b = await pki.issue("b.test", ["DNS:b.test"]);
  });
  after(() => pki.remove());

  it("reads a valid pair with its names and expiry", async () => {
    const pair = await loadCertificateFiles(a.certFile, a.keyFile);
    expect(pair.names).toEqual(["a.test", "*.a.test", "127.0.0.1"]);
    const days = (pair.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(31);
    expect(pair.certPem).toBe(a.certPem);
  });

  it("names a missing certificate or key file", async () => {
    const missing = `${pki.dir}/nope.crt`;
    await expect(loadCertificateFiles(missing, a.keyFile)).rejects.toThrow(
      `Cannot load certificate "${missing}": file not found`,
    );
    await expect(loadCertificateFiles(a.certFile, `${pki.dir}/nope.key`)).rejects.toThrow(
      `Cannot load key "${pki.dir}/nope.key": file not found`,
    );
  });

  it("rejects text that is not a PEM certificate", async () => {
    const junk = `${pki.dir}/junk.crt`;
    await Deno.writeTextFile(junk, "hello\n");
    await expect(loadCertificateFiles(junk, a.keyFile)).rejects.toThrow(
      `Cannot load certificate "${junk}": not a PEM certificate`,
    );
    // a key where the certificate should be
    await expect(loadCertificateFiles(a.keyFile, a.keyFile)).rejects.toThrow(
      "not a PEM certificate",
    );
    await expect(loadCertificateFiles(a.certFile, a.certFile)).rejects.toThrow(
      "key is not a PEM private key",
    );
  });

  it("rejects a key that belongs to another certificate", async () => {
    await expect(loadCertificateFiles(a.certFile, b.keyFile)).rejects.toThrow(
      `Cannot load certificate "${a.certFile}": key does not match certificate`,
    );
  });

  it("rejects an expired certificate, naming the date", async () => {
    const old = await pki.issue("old.test", ["DNS:old.test"], {
      start: "20200101000000Z",
      end: "20200102000000Z",
    });
    await expect(loadCertificateFiles(old.certFile, old.keyFile)).rejects.toThrow(
      `Cannot load certificate "${old.certFile}": certificate expired on 2020-01-02T00:00:00.000Z`,
    );
    // parsing PEM text (ACME results) reports the date instead of refusing
    expect(parseCertificatePair(old.certPem, old.keyPem).notAfter.toISOString()).toBe(
      "2020-01-02T00:00:00.000Z",
    );
  });
});

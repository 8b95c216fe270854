/**
 * ACME renewal information (ARI, RFC 9773). The installed Pebble has no ARI, so a tiny HTTPS "CA
 * front" (same private CA as Pebble's listener) serves Pebble's directory plus a `renewalInfo`
 * URL, answers renewal info with windows chosen per test and records the certificate IDs it is
 * asked for; orders still go to the real Pebble behind it.
 */

import { after, before, describe, it } from "node:test";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { expect } from "expect";
import { AcmeManager, type CertificatePair } from "../src/acme/manager.ts";
import {
  ARI_POLL_DEFAULT_MS,
  ARI_POLL_MAX_MS,
  ARI_POLL_MIN_MS,
  ariCertId,
  chooseRenewalTime,
  parseRenewalInfo,
  retryAfterMs,
} from "../src/acme/renewal_info.ts";
import { answerChallenge, type ChallengeSource } from "./helpers/acme_challenge.ts";
import type { LogFields, Logger, LogLevel } from "../src/log/types.ts";
import { hasPebble, makeListenerCert, type Pebble, startPebble } from "./helpers/pebble.ts";
import { NEW_P256_KEY, openssl } from "./helpers/test_pki.ts";
import { waitFor } from "./helpers/wait.ts";

const DAY_MS = 86_400_000;

interface LogLine {
  level: LogLevel;
  msg: string;
  fields?: LogFields;
  at: number;
}

function memoryLogger(lines: LogLine[]): Logger {
  const at = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    lines.push({ level, msg, fields, at: Date.now() });
  };
  return {
    enabled: () => true,
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    access: () => {},
    reopen: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/** The certID computed from what `openssl x509` prints (hex AKI key id and serial). */
async function opensslCertId(certFile: string, cwd: string): Promise<string> {
  const text = await openssl(
    cwd,
    ["x509", "-in", certFile, "-noout", "-serial", "-ext", "authorityKeyIdentifier"],
  );
  let serial = /serial=([0-9A-F]+)/i.exec(text)![1];
  if (serial.length % 2) serial = "0" + serial;
  // DER INTEGER content: a leading 00 keeps a serial with its high bit set positive.
  if (parseInt(serial[0], 16) >= 8) serial = "00" + serial;
  const keyId = /Authority Key Identifier:\s*(?:keyid:)?([0-9A-F:]+)/i.exec(text)![1];
  const b64 = (hex: string) => Buffer.from(hex.replace(/:/g, ""), "hex").toString("base64url");
  return `${b64(keyId)}.${b64(serial)}`;
}

describe("ARI certificate ID and window", () => {
  let dir = "";
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "bws_ari_" });
    await makeListenerCert(dir); // ca.pem/ca.key and a leaf signed by it
    await openssl(dir, [
      "req",
      ...NEW_P256_KEY,
      "-keyout",
      "k.pem",
      "-out",
      "l.csr",
      "-subj",
      "/CN=leaf",
    ]); // deno-fmt-ignore
    await Deno.writeTextFile(join(dir, "aki.cnf"), "authorityKeyIdentifier=keyid:always\n");
    for (
      const [out, serial, ext] of [
        ["high.pem", "0x87654321abcdef", ["-extfile", "aki.cnf"]],
        ["low.pem", "0x0102", ["-extfile", "aki.cnf"]],
        ["noaki.pem", "0x42", []],
      ] as const
    ) {
      await openssl(dir, [
        "x509",
        "-req",
        "-in",
        "l.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        serial,
        "-days",
        "2",
        "-out",
        out,
        ...ext,
      ]); // deno-fmt-ignore
    }
  });
  after(async () => {
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("is base64url(AKI key id).base64url(DER serial), as openssl's fields give it", async () => {
    for (const file of ["high.pem", "low.pem", "cert.pem"]) {
      const pem = await Deno.readTextFile(join(dir, file));
      expect(ariCertId(pem)).toBe(await opensslCertId(file, dir));
    }
    // The high-bit serial carries its 00 byte, and nothing is padded.
    const high = ariCertId(await Deno.readTextFile(join(dir, "high.pem")));
    expect(high.split(".")[1]).toBe(Buffer.from("0087654321abcdef", "hex").toString("base64url"));
    expect(high).not.toContain("=");
  });

  it("refuses a certificate without an authority key identifier", async () => {
    const pem = await Deno.readTextFile(join(dir, "noaki.pem"));
    expect(() => ariCertId(pem)).toThrow(/Cannot compute renewal info ID .*authority key/);
  });

  it("parses the window, clamps Retry-After and picks an instant inside the window", () => {
    const w = parseRenewalInfo({
      suggestedWindow: { start: "2030-01-01T00:00:00Z", end: "2030-01-03T00:00:00Z" },
      explanationURL: "https://ca.test/why",
    });
    expect(w).toEqual({
      start: Date.parse("2030-01-01T00:00:00Z"),
      end: Date.parse("2030-01-03T00:00:00Z"),
      explanationUrl: "https://ca.test/why",
    });
    expect(chooseRenewalTime(w, 0)).toBe(w.start);
    expect(chooseRenewalTime(w, 0.5)).toBe(w.start + DAY_MS);
    expect(chooseRenewalTime(w, 0.999999)).toBeLessThan(w.end);
    for (
      const bad of [null, "x", {}, { suggestedWindow: { start: "x", end: "y" } }, {
        suggestedWindow: { start: "2030-01-03T00:00:00Z", end: "2030-01-01T00:00:00Z" },
      }]
    ) {
      expect(() => parseRenewalInfo(bad)).toThrow(/Cannot use renewal info/);
    }
    expect(retryAfterMs(null)).toBe(ARI_POLL_DEFAULT_MS);
    expect(retryAfterMs("garbage")).toBe(ARI_POLL_DEFAULT_MS);
    expect(retryAfterMs("60")).toBe(ARI_POLL_MIN_MS);
    expect(retryAfterMs("7200")).toBe(7_200_000);
    expect(retryAfterMs("9999999")).toBe(ARI_POLL_MAX_MS);
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(retryAfterMs("Wed, 01 Jan 2030 03:00:00 GMT", now)).toBe(3 * 3_600_000);
  });
});

describe("AcmeManager with renewal info (Pebble behind an ARI front)", { skip: !hasPebble }, () => {
  let tmp = "";
  let pebble: Pebble | undefined;
  let challengeServer: Deno.HttpServer | undefined;
  let front: Deno.HttpServer | undefined;
  let frontUrl = "";
  let current: ChallengeSource | undefined;
  /** Whether the front's directory names a renewalInfo resource. */
  let offerAri = true;
  /** The renewal info answer for one certID. */
  let answer: (certId: string) => Response = () => new Response("unset", { status: 500 });
  const asked: string[] = [];
  const managers: AcmeManager[] = [];
  const NAMES = ["ari.test", "www.ari.test"];
  let seed: CertificatePair | undefined;

  const windowResponse = (start: number, end: number, headers: HeadersInit = {}) =>
    Response.json({
      suggestedWindow: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
    }, { headers });

  function newManager(
    storageDir: string,
    lines: LogLine[],
    extra: Partial<ConstructorParameters<typeof AcmeManager>[0]> = {},
  ) {
    const m = new AcmeManager({
      directoryUrl: `${frontUrl}/dir`,
      email: "admin@ari.test",
      storageDir,
      renewBeforeDays: 30,
      caCerts: [pebble!.caPem],
      pollMinMs: 100,
      logger: memoryLogger(lines),
      ...extra,
    });
    managers.push(m);
    current = m;
    return m;
  }

  /** A storage dir holding the seed certificate (and account key). */
  async function seededStore(name: string): Promise<string> {
    const to = join(tmp, name);
    await Deno.mkdir(to);
    const out = await new Deno.Command("cp", { args: ["-a", `${join(tmp, "seed")}/.`, to] })
      .output();
    if (!out.success) throw new Error(`Cannot copy seed store to "${to}"`);
    return to;
  }

  const issued = (lines: LogLine[]) => lines.filter((l) => l.msg.startsWith("Obtained"));
  const problems = (lines: LogLine[]) =>
    lines.filter((l) => l.level === "warn" || l.level === "error");

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "bws_ari_e2e_" });
    challengeServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      return (current ? answerChallenge(current, req) : null) ??
        new Response("not a challenge", { status: 400 });
    });
    pebble = await startPebble((challengeServer.addr as Deno.NetAddr).port);
    const p = pebble;
    front = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(join(p.dir, "cert.pem")),
      key: await Deno.readTextFile(join(p.dir, "key.pem")),
      onListen() {},
    }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/dir") {
        const dir = await (await fetch(p.directoryUrl, { client: p.http })).json();
        if (offerAri) dir.renewalInfo = `${frontUrl}/ari/`;
        return Response.json(dir);
      }
      if (path.startsWith("/ari/")) {
        const id = path.slice("/ari/".length);
        asked.push(id);
        return answer(id);
      }
      return new Response("not found", { status: 404 });
    });
    frontUrl = `https://127.0.0.1:${(front.addr as Deno.NetAddr).port}`;
    const lines: LogLine[] = [];
    const m = newManager(join(tmp, "seed"), lines);
    seed = await m.obtain(NAMES);
    await m.stop();
  });

  after(async () => {
    for (const m of managers) await m.stop();
    await front?.shutdown();
    await pebble?.close();
    await challengeServer?.shutdown();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  it("a window in the past renews a stored certificate at once, asking for openssl's certID", async () => {
    await Deno.writeTextFile(join(tmp, "seed.pem"), seed!.certPem);
    const seedId = await opensslCertId("seed.pem", tmp);
    const now = Date.now();
    answer = (id) =>
      id === seedId
        ? windowResponse(now - 2 * DAY_MS, now - DAY_MS)
        : windowResponse(now + 100 * DAY_MS, now + 101 * DAY_MS);
    const lines: LogLine[] = [];
    const m = newManager(await seededStore("past"), lines); // 30 days before a 5-year expiry
    const seen: CertificatePair[] = [];
    m.manage(NAMES, (pair) => seen.push(pair));
    await waitFor("the renewed certificate", 10_000, () => seen.length === 2);
    expect(seen[0].certPem).toBe(seed!.certPem);
    const renewed = new X509Certificate(seen[1].certPem);
    expect(renewed.serialNumber).not.toBe(new X509Certificate(seed!.certPem).serialNumber);
    expect(asked).toContain(seedId);
    // The new certificate is asked about too; its window is later than the expiry rule's date.
    await waitFor(
      "renewal info on the new certificate",
      5_000,
      () => asked.includes(ariCertId(seen[1].certPem)),
    );
    expect(lines.some((l) => l.msg.includes("moves the renewal earlier"))).toBe(true);
    expect(problems(lines)).toEqual([]);
    await m.stop();
  });

  it("a window starting soon renews at an instant inside it", async () => {
    const start = Date.now() + 1500;
    const end = start + 1000;
    answer = () => windowResponse(start, end);
    const lines: LogLine[] = [];
    // Default checkIntervalMs (12 h): only the renewal info can bring the renewal this soon.
    const m = newManager(await seededStore("soon"), lines);
    const seen: CertificatePair[] = [];
    m.manage(NAMES, (pair) => seen.push(pair));
    await waitFor("the renewed certificate", 12_000, () => seen.length === 2);
    const renewing = lines.find((l) => l.msg.startsWith("Renewing certificate"))!;
    expect(renewing.at).toBeGreaterThanOrEqual(start - 5);
    expect(renewing.at).toBeLessThan(end + 1000);
    expect(issued(lines).length).toBe(1);
    await m.stop();
  });

  it("a window far in the future leaves the expiry rule", async () => {
    const notAfter = seed!.notAfter.getTime();
    answer = () => windowResponse(notAfter - 10 * DAY_MS, notAfter - 5 * DAY_MS);
    // Only this certificate's requests count: an earlier test's manager may still ask about the
    // certificate it renewed (a request already on its way when it stopped).
    const seedId = ariCertId(seed!.certPem);
    const askedForSeed = () => asked.filter((id) => id === seedId).length;
    const before = askedForSeed();
    const lines: LogLine[] = [];
    const m = newManager(await seededStore("future"), lines, { checkIntervalMs: 1000 });
    const seen: CertificatePair[] = [];
    m.manage(NAMES, (pair) => seen.push(pair));
    await waitFor("the renewal info request", 5_000, () => askedForSeed() > before);
    await new Promise((r) => setTimeout(r, 1500)); // at least one more check
    expect(seen.length).toBe(1);
    expect(issued(lines)).toEqual([]);
    // Asked once: the next poll waits for the default 6 h, not for every check.
    expect(askedForSeed()).toBe(before + 1);
    expect(lines.some((l) => l.level === "debug" && l.msg.includes("changes nothing"))).toBe(true);
    expect(problems(lines)).toEqual([]);
    await m.stop();
  });

  it("a 404, garbage or missing renewal info falls back to the rule without a warning", async () => {
    const cases: [string, () => void][] = [
      ["404", () => (answer = () => new Response("no such cert", { status: 404 }))],
      ["garbage", () => (answer = () => new Response("{not json", { status: 200 }))],
      ["bad window", () => (answer = () => Response.json({ suggestedWindow: { start: 1 } }))],
      ["no renewalInfo", () => (offerAri = false)],
    ];
    try {
      for (const [name, setup] of cases) {
        setup();
        const lines: LogLine[] = [];
        const m = newManager(await seededStore(name.replace(/ /g, "_")), lines, {
          checkIntervalMs: 1000,
        });
        const seen: CertificatePair[] = [];
        m.manage(NAMES, (pair) => seen.push(pair));
        await waitFor(
          `the ${name} fallback`,
          5_000,
          () =>
            lines.some((l) =>
              l.level === "debug" && /Cannot get renewal info|No renewal info/.test(l.msg)
            ),
        );
        await new Promise((r) => setTimeout(r, 300));
        expect(seen.length).toBe(1);
        expect(issued(lines)).toEqual([]);
        expect(problems(lines)).toEqual([]);
        await m.stop();
      }
      // The rule itself still renews (a 10-year window on a 5-year certificate), without waiting
      // for the renewal info.
      answer = () => new Response("no such cert", { status: 404 });
      offerAri = true;
      const lines: LogLine[] = [];
      const m = newManager(await seededStore("rule"), lines, { renewBeforeDays: 3650 });
      const seen: CertificatePair[] = [];
      m.manage(NAMES, (pair) => seen.push(pair));
      await waitFor("the renewal by the rule", 10_000, () => seen.length === 2);
      expect(problems(lines)).toEqual([]);
      await m.stop();
    } finally {
      offerAri = true;
    }
  });

  it("a restarted manager without an email renews with its stored account key", async () => {
    // acme-client re-sends { termsOfServiceAgreed } as an update of the existing account, which
    // Pebble refuses as an "empty update" when there is no contact to set.
    answer = () => new Response("no such cert", { status: 404 });
    const lines: LogLine[] = [];
    const m = newManager(await seededStore("no_email"), lines, {
      email: "",
      renewBeforeDays: 3650,
    });
    const seen: CertificatePair[] = [];
    m.manage(NAMES, (pair) => seen.push(pair));
    await waitFor("the renewal", 10_000, () => seen.length === 2 || problems(lines).length > 0);
    expect(problems(lines)).toEqual([]);
    expect(seen.length).toBe(2);
    await m.stop();
    // A new key without an email still registers.
    const fresh = newManager(join(tmp, "fresh_no_email"), [], { email: "" });
    expect((await fresh.obtain(NAMES)).names.sort()).toEqual([...NAMES].sort());
    await fresh.stop();
  });
});

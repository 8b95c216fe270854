/**
 * Differential test of the HTTP/1.1 request-head parser: ~200 generated heads (valid and
 * malformed: token characters, separators, whitespace in each position, line ends, lengths at the
 * limit and one past, Content-Length / Transfer-Encoding shapes from the smuggling literature,
 * obs-fold, controls, obs-text, target forms, versions, Host variants) each get three verdicts,
 * accept or reject: a running bws (its own front end), Node's http server (llhttp, the `node`
 * binary; skipped without it) and Deno.serve (hyper's parser), all over raw TCP.
 *
 * Asserted: bws accepts exactly the heads labelled valid per RFC 9110/9112, accepts none that
 * llhttp or Deno.serve rejects, and rejects none that llhttp accepts and the RFC allows, except
 * the differences listed in KNOWN, each with its reason.
 */
import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import type { HeadLimits } from "../src/http1/request_head.ts";
import { startBws, type TestBws } from "./helpers/bws.ts";

const LIMITS: HeadLimits = { maxHeaderSize: 8192, maxHeaders: 100 };

type Verdict = "accept" | "reject";
/** A verdict and what it was read from: a status code, "closed", "timeout", "incomplete". */
interface Answer {
  verdict: Verdict;
  detail: string;
}

/** The port of the bws under test (started in `before`). */
let bwsPort = 0;

/**
 * The bws verdict on one head: sent over a real socket to a running bws (its own HTTP/1.1 front
 * end), in front of an upstream that answers 200 to anything.
 */
function bwsAnswer(head: Uint8Array): Promise<Answer> {
  return socketAnswer(bwsPort, head);
}

// ---------------------------------------------------------------------------------------------
// The heads. `valid`: a well-formed HTTP/1.1 request head per RFC 9110/9112 that a server
// must not refuse for its syntax (limits aside).

interface HeadCase {
  name: string;
  valid: boolean;
  head: string;
}

const HOST = "Host: a.test\r\n";
/** A GET with Host, `fields` added after Host, the given request line. */
const req = (fields = "", line = "GET /p HTTP/1.1") => `${line}\r\n${HOST}${fields}\r\n`;
/** A POST whose framing fields are `fields` (no Host added twice). */
const post = (fields: string, version = "1.1") => `POST /p HTTP/${version}\r\n${HOST}${fields}\r\n`;

const CASES: HeadCase[] = [];
function add(valid: boolean, rows: [string, string][]): void {
  for (const [name, head] of rows) CASES.push({ name, valid, head });
}

// Methods: any token is a method (RFC 9110 §9.1); separators, controls and obs-text are not.
add(true, [
  ["method GET", req()],
  ["method HEAD", req("", "HEAD /p HTTP/1.1")],
  ["method POST", req("", "POST /p HTTP/1.1")],
  ["method PUT", req("Content-Length: 0\r\n", "PUT /p HTTP/1.1")],
  ["method DELETE", req("", "DELETE /p HTTP/1.1")],
  ["method PATCH", req("", "PATCH /p HTTP/1.1")],
  ["method OPTIONS origin-form", req("", "OPTIONS /p HTTP/1.1")],
  ["method M-SEARCH", req("", "M-SEARCH /p HTTP/1.1")],
  ["method PROPFIND", req("", "PROPFIND /p HTTP/1.1")],
  ["method unknown token", req("", "FOO /p HTTP/1.1")],
  ["method lower-case", req("", "get /p HTTP/1.1")],
  ["method of every tchar", req("", "!#$%&'*+-.^_`|~09AZaz /p HTTP/1.1")],
]);
add(false, [
  ["method empty", req("", " /p HTTP/1.1")],
  ...["(", ")", ",", "/", ":", ";", "<", "=", ">", "?", "@", "[", "\\", "]", "{", "}", '"'].map(
    (c): [string, string] => [`method with separator ${c}`, req("", `G${c}T /p HTTP/1.1`)],
  ),
  ["method with NUL", req("", "G\x00T /p HTTP/1.1")],
  ["method with DEL", req("", "G\x7fT /p HTTP/1.1")],
  ["method with obs-text", req("", "G\xc9T /p HTTP/1.1")],
  ["method then tab", req("", "GET\t/p HTTP/1.1")],
]);

// Request targets.
add(true, [
  ["target /", req("", "GET / HTTP/1.1")],
  ["target with query", req("", "GET /p?q=1&r=%2F HTTP/1.1")],
  ["target with ? in the query", req("", "GET /p?q?r HTTP/1.1")],
  ["target //x", req("", "GET //x HTTP/1.1")],
  ["target with sub-delims, : and @", req("", "GET /a:b@c!$&'()*+,;= HTTP/1.1")],
  ["target with percent-encoding", req("", "GET /%41%62 HTTP/1.1")],
  ["absolute-form http", req("", "GET http://b.test/p?q HTTP/1.1")],
  ["absolute-form https with port", req("", "GET https://b.test:8443/p HTTP/1.1")],
  ["absolute-form with empty path", req("", "GET http://b.test HTTP/1.1")],
  ["absolute-form upper-case scheme", req("", "GET HTTP://b.test/ HTTP/1.1")],
  ["absolute-form IPv6", req("", "GET http://[::1]:80/ HTTP/1.1")],
  ["absolute-form other scheme", req("", "GET ftp://b.test/ HTTP/1.1")],
  ["asterisk-form OPTIONS", req("", "OPTIONS * HTTP/1.1")],
  ["authority-form CONNECT", req("", "CONNECT b.test:443 HTTP/1.1")],
]);
add(false, [
  ["target with fragment", req("", "GET /p#f HTTP/1.1")],
  ...['"', "<", ">", "\\", "^", "`", "{", "|", "}", "[", "]"].map(
    (c): [string, string] => [`target with ${c}`, req("", `GET /a${c}b HTTP/1.1`)],
  ),
  ["target with bad percent-encoding", req("", "GET /%zz HTTP/1.1")],
  ["target with NUL", req("", "GET /a\x00b HTTP/1.1")],
  ["target with DEL", req("", "GET /a\x7fb HTTP/1.1")],
  ["target with tab", req("", "GET /a\tb HTTP/1.1")],
  ["target with obs-text 0x80", req("", "GET /a\x80b HTTP/1.1")],
  ["target with obs-text 0xff", req("", "GET /a\xffb HTTP/1.1")],
  ["target with UTF-8", req("", "GET /caf\xc3\xa9 HTTP/1.1")],
  ["target with a bare CR", req("", "GET /a\rb HTTP/1.1")],
  ["target relative", req("", "GET p HTTP/1.1")],
  ["target empty", req("", "GET  HTTP/1.1")],
  ["asterisk-form for GET", req("", "GET * HTTP/1.1")],
  ["asterisk with more", req("", "OPTIONS *x HTTP/1.1")],
  ["authority-form for GET", req("", "GET b.test:443 HTTP/1.1")],
  ["CONNECT origin-form", req("", "CONNECT /p HTTP/1.1")],
  ["CONNECT without port", req("", "CONNECT b.test HTTP/1.1")],
  ["absolute-form with userinfo", req("", "GET http://u:p@b.test/ HTTP/1.1")],
  ["absolute-form empty host", req("", "GET http:///p HTTP/1.1")],
  ["absolute-form one slash", req("", "GET http:/b.test/ HTTP/1.1")],
  ["absolute-form bad port", req("", "GET http://b.test:8x/ HTTP/1.1")],
]);

// HTTP versions and the request line's separators.
add(true, [
  ["HTTP/1.0 without Host", "GET /p HTTP/1.0\r\n\r\n"],
  ["HTTP/1.0 with Host", req("", "GET /p HTTP/1.0")],
  ["HTTP/1.0 keep-alive", req("Connection: keep-alive\r\n", "GET /p HTTP/1.0")],
  ["HTTP/1.2 (a higher minor)", req("", "GET /p HTTP/1.2")],
]);
add(false, [
  ["HTTP/0.9 simple request", "GET /p\r\n\r\n"],
  ["HTTP/0.9 version", req("", "GET /p HTTP/0.9")],
  ["HTTP/2.0 version", req("", "GET /p HTTP/2.0")],
  ["HTTP/3.0 version", req("", "GET /p HTTP/3.0")],
  ["HTTP/10.1 version", req("", "GET /p HTTP/10.1")],
  ["HTTP/1.10 version", req("", "GET /p HTTP/1.10")],
  ["HTTP/1 version", req("", "GET /p HTTP/1")],
  ["version lower-case", req("", "GET /p http/1.1")],
  ["version with letters", req("", "GET /p HTTP/a.b")],
  ["version with suffix", req("", "GET /p HTTP/1.1x")],
  ["HTTPS/1.1 version", req("", "GET /p HTTPS/1.1")],
  ["RTSP/1.0 version", req("", "GET /p RTSP/1.0")],
  ["no version, trailing space", req("", "GET /p ")],
  ["two spaces before the target", req("", "GET  /p HTTP/1.1")],
  ["two spaces before the version", req("", "GET /p  HTTP/1.1")],
  ["space before the method", req("", " GET /p HTTP/1.1")],
  ["space after the version", req("", "GET /p HTTP/1.1 ")],
  ["tab after the version", req("", "GET /p HTTP/1.1\t")],
  ["tab separators", req("", "GET\t/p\tHTTP/1.1")],
  ["three words after the target", req("", "GET /p HTTP/1.1 extra")],
  ["HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
]);

// Line ends and empty lines before the request line (RFC 9112 §2.2).
add(true, [
  ["one empty line first", "\r\n" + req()],
  ["eight empty lines first", "\r\n".repeat(8) + req()],
  ["nine empty lines first", "\r\n".repeat(9) + req()],
]);
add(false, [
  ["bare LF everywhere", "GET /p HTTP/1.1\nHost: a.test\n\n"],
  ["bare LF after the request line", "GET /p HTTP/1.1\nHost: a.test\r\n\r\n"],
  ["bare LF after a field", "GET /p HTTP/1.1\r\nHost: a.test\nX: 1\r\n\r\n"],
  ["bare LF ending the head", "GET /p HTTP/1.1\r\nHost: a.test\r\n\n"],
  ["bare CR everywhere", "GET /p HTTP/1.1\rHost: a.test\r\r"],
  ["bare CR after the request line", "GET /p HTTP/1.1\rHost: a.test\r\n\r\n"],
  ["CR CR LF line end", "GET /p HTTP/1.1\r\r\nHost: a.test\r\n\r\n"],
  ["LF CR LF ending the head", "GET /p HTTP/1.1\r\nHost: a.test\n\r\n"],
  ["bare LF first", "\n" + req()],
  ["space line first", " \r\n" + req()],
  ["whitespace before the first field", "GET /p HTTP/1.1\r\n Host: a.test\r\n\r\n"],
]);

// Field names: tchar only, no whitespace before the colon.
add(true, [
  ["field name of every tchar", req("!#$%&'*+-.^_`|~09AZaz: 1\r\n")],
  ["field name upper-case Host", "GET /p HTTP/1.1\r\nHOST: a.test\r\n\r\n"],
  ["field without space after colon", "GET /p HTTP/1.1\r\nhost:a.test\r\n\r\n"],
  ["field name with underscore", req("X_Forwarded_For: 1\r\n")],
]);
add(false, [
  ...["(", ")", ",", "/", ";", "<", "=", ">", "?", "@", "[", "\\", "]", "{", "}", '"'].map(
    (c): [string, string] => [`field name with ${c}`, req(`X${c}A: 1\r\n`)],
  ),
  ["field name empty", req(": 1\r\n")],
  ["field without colon", req("X-A 1\r\n")],
  ["space before the colon", req("X-A : 1\r\n")],
  ["tab before the colon", req("X-A\t: 1\r\n")],
  ["space inside a field name", req("X A: 1\r\n")],
  ["field name with NUL", req("X\x00A: 1\r\n")],
  ["field name with DEL", req("X\x7fA: 1\r\n")],
  ["field name with obs-text", req("X\xe9A: 1\r\n")],
  ["field name with a bare CR", req("X\rA: 1\r\n")],
]);

// Field values: VCHAR, obs-text, SP and HTAB; OWS around is not part of the value.
add(true, [
  ["value empty", req("X-A:\r\n")],
  ["value only spaces", req("X-A:   \r\n")],
  ["value with inner and outer whitespace", req("X-A: \t a \t b \t\r\n")],
  [
    "value of every VCHAR",
    req(`X-A: ${String.fromCharCode(...Array.from({ length: 94 }, (_, i) => 33 + i))}\r\n`),
  ],
  ["value with obs-text", req("X-A: caf\xe9 \x80\xff\r\n")],
  ["value with UTF-8", req("X-A: caf\xc3\xa9\r\n")],
  ["Connection close", req("Connection: close\r\n")],
  [
    "Connection keep-alive, Upgrade",
    req("Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"),
  ],
  ["Expect 100-continue", req("Expect: 100-continue\r\nContent-Length: 0\r\n")],
]);
add(false, [
  ["value with NUL", req("X-A: a\x00b\r\n")],
  ["value with DEL", req("X-A: a\x7fb\r\n")],
  ["value with VT", req("X-A: a\x0bb\r\n")],
  ["value with FF", req("X-A: a\x0cb\r\n")],
  ["value with ESC", req("X-A: a\x1bb\r\n")],
  ["value with 0x01", req("X-A: \x01\r\n")],
  ["value with a bare CR", req("X-A: a\rb\r\n")],
  ["value with a bare LF", req("X-A: a\nb\r\n")],
  ["obs-fold with SP", req("X-A: 1\r\n 2\r\n")],
  ["obs-fold with HTAB", req("X-A: 1\r\n\t2\r\n")],
  ["obs-fold of an empty value", req("X-A:\r\n 2\r\n")],
  [
    "obs-fold hiding Transfer-Encoding",
    post("Content-Length: 0\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n"),
  ],
]);

// Host (RFC 9110 §7.2, RFC 9112 §3.2).
add(true, [
  ["Host with port", "GET /p HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"],
  ["Host with empty port", "GET /p HTTP/1.1\r\nHost: a.test:\r\n\r\n"],
  ["Host IPv4", "GET /p HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
  ["Host IPv6", "GET /p HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n"],
  ["Host with sub-delims", "GET /p HTTP/1.1\r\nHost: a_b~c!$&'()*+,;=.test\r\n\r\n"],
  ["Host with percent-encoding", "GET /p HTTP/1.1\r\nHost: %41.test\r\n\r\n"],
  ["Host upper-case with trailing dot", "GET /p HTTP/1.1\r\nHost: A.TEST.\r\n\r\n"],
  ["Host empty", "GET /p HTTP/1.1\r\nHost:\r\n\r\n"],
  ["absolute-form overrides Host", "GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"],
]);
add(false, [
  ["Host missing", "GET /p HTTP/1.1\r\n\r\n"],
  ["Host missing with absolute-form", "GET http://b.test/ HTTP/1.1\r\n\r\n"],
  ["Host twice, same", "GET /p HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n"],
  ["Host twice, different", "GET /p HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"],
  ["Host twice in HTTP/1.0", "GET /p HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n"],
  ["Host list", "GET /p HTTP/1.1\r\nHost: a.test, b.test\r\n\r\n"],
  ["Host with space", "GET /p HTTP/1.1\r\nHost: a test\r\n\r\n"],
  ["Host with userinfo", "GET /p HTTP/1.1\r\nHost: u@a.test\r\n\r\n"],
  ["Host with path", "GET /p HTTP/1.1\r\nHost: a.test/x\r\n\r\n"],
  ["Host with ?", "GET /p HTTP/1.1\r\nHost: a.test?x\r\n\r\n"],
  ["Host with #", "GET /p HTTP/1.1\r\nHost: a.test#x\r\n\r\n"],
  ["Host with obs-text", "GET /p HTTP/1.1\r\nHost: caf\xe9.test\r\n\r\n"],
  ["Host with two colons", "GET /p HTTP/1.1\r\nHost: a:b:c\r\n\r\n"],
  ["Host with a letter port", "GET /p HTTP/1.1\r\nHost: a.test:8x\r\n\r\n"],
  ["Host only a port", "GET /p HTTP/1.1\r\nHost: :80\r\n\r\n"],
  ["Host IPv6 unbracketed", "GET /p HTTP/1.1\r\nHost: ::1\r\n\r\n"],
  ["Host IPv6 unclosed", "GET /p HTTP/1.1\r\nHost: [::1\r\n\r\n"],
  ["Host IPv6 with junk", "GET /p HTTP/1.1\r\nHost: [::1]x\r\n\r\n"],
  ["Host bad percent-encoding", "GET /p HTTP/1.1\r\nHost: %zz.test\r\n\r\n"],
  ["Host quoted", 'GET /p HTTP/1.1\r\nHost: "a.test"\r\n\r\n'],
]);

// Content-Length (RFC 9110 §8.6, RFC 9112 §6.3).
add(true, [
  ["Content-Length 0", post("Content-Length: 0\r\n")],
  ["Content-Length 5", post("Content-Length: 5\r\n")],
  ["Content-Length leading zeros", post("Content-Length: 005\r\n")],
  ["Content-Length with SP around", post("Content-Length:  5  \r\n")],
  ["Content-Length with HTAB around", post("Content-Length:\t5\t\r\n")],
  ["Content-Length 15 digits", post("Content-Length: 100000000000000\r\n")],
  ["Content-Length 16 digits", post("Content-Length: 1000000000000000\r\n")],
]);
add(false, [
  ["Content-Length twice, same", post("Content-Length: 5\r\nContent-Length: 5\r\n")],
  ["Content-Length twice, different", post("Content-Length: 5\r\nContent-Length: 6\r\n")],
  ["Content-Length list, same", post("Content-Length: 5, 5\r\n")],
  ["Content-Length list, different", post("Content-Length: 5, 6\r\n")],
  ["Content-Length list without space", post("Content-Length: 5,5\r\n")],
  ["Content-Length empty", post("Content-Length:\r\n")],
  ["Content-Length +5", post("Content-Length: +5\r\n")],
  ["Content-Length -1", post("Content-Length: -1\r\n")],
  ["Content-Length 5.0", post("Content-Length: 5.0\r\n")],
  ["Content-Length hex", post("Content-Length: 0x5\r\n")],
  ["Content-Length 1e3", post("Content-Length: 1e3\r\n")],
  ["Content-Length with inner space", post("Content-Length: 5 5\r\n")],
  ["Content-Length letters", post("Content-Length: five\r\n")],
  ["Content-Length quoted", post('Content-Length: "5"\r\n')],
  ["Content-Length past 2^64", post("Content-Length: 18446744073709551616\r\n")],
  ["Content-Length with VT", post("Content-Length: \x0b5\r\n")],
  ["Content-Length with obs-text digit", post("Content-Length: \xb9\r\n")],
  [
    "Content-Length and Transfer-Encoding",
    post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
  ],
  [
    "Transfer-Encoding and Content-Length",
    post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
  ],
  [
    "Transfer-Encoding and Content-Length 0",
    post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"),
  ],
]);

// Transfer-Encoding (RFC 9112 §6.1, §6.3) and the smuggling shapes around it.
add(true, [
  ["Transfer-Encoding chunked", post("Transfer-Encoding: chunked\r\n")],
  ["Transfer-Encoding Chunked", post("Transfer-Encoding: Chunked\r\n")],
  ["Transfer-Encoding CHUNKED", post("Transfer-Encoding: CHUNKED\r\n")],
  ["Transfer-Encoding with OWS", post("Transfer-Encoding: \t chunked \t\r\n")],
  ["Transfer-Encoding gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n")],
  ["Transfer-Encoding gzip,chunked", post("Transfer-Encoding: gzip,chunked\r\n")],
  [
    "Transfer_Encoding is another field",
    post("Transfer_Encoding: chunked\r\nContent-Length: 0\r\n"),
  ],
]);
add(false, [
  ["Transfer-Encoding chunked, gzip", post("Transfer-Encoding: chunked, gzip\r\n")],
  ["Transfer-Encoding chunked, identity", post("Transfer-Encoding: chunked, identity\r\n")],
  ["Transfer-Encoding identity", post("Transfer-Encoding: identity\r\n")],
  ["Transfer-Encoding gzip", post("Transfer-Encoding: gzip\r\n")],
  ["Transfer-Encoding chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n")],
  ["Transfer-Encoding twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")],
  [
    "Transfer-Encoding gzip then chunked fields",
    post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
  ],
  [
    "Transfer-Encoding chunked then gzip fields",
    post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
  ],
  ["Transfer-Encoding xchunked", post("Transfer-Encoding: xchunked\r\n")],
  ["Transfer-Encoding chunkedx", post("Transfer-Encoding: chunkedx\r\n")],
  ["Transfer-Encoding chunk", post("Transfer-Encoding: chunk\r\n")],
  ["Transfer-Encoding quoted", post('Transfer-Encoding: "chunked"\r\n')],
  ["Transfer-Encoding with a parameter", post("Transfer-Encoding: chunked;q=1\r\n")],
  ["Transfer-Encoding with a trailing comma", post("Transfer-Encoding: chunked,\r\n")],
  ["Transfer-Encoding with a leading comma", post("Transfer-Encoding: , chunked\r\n")],
  ["Transfer-Encoding empty", post("Transfer-Encoding:\r\n")],
  ["Transfer-Encoding with VT", post("Transfer-Encoding:\x0bchunked\r\n")],
  ["Transfer-Encoding with NUL", post("Transfer-Encoding: chunked\x00\r\n")],
  ["Transfer-Encoding space before colon", post("Transfer-Encoding : chunked\r\n")],
  ["Transfer-Encoding in HTTP/1.0", post("Transfer-Encoding: chunked\r\n", "1.0")],
]);

// Limits: the head size and the field count at the limit and one past.
const filler = (total: number) => {
  const start = "GET /p HTTP/1.1\r\nHost: a.test\r\nX-Fill: ";
  return start + "a".repeat(total - start.length - 4) + "\r\n\r\n";
};
const fields = (n: number) => `GET /p HTTP/1.1\r\n${HOST}${"X-N: 1\r\n".repeat(n - 1)}\r\n`;
add(true, [
  ["head of exactly max_header_size", filler(LIMITS.maxHeaderSize)],
  ["head one past max_header_size", filler(LIMITS.maxHeaderSize + 1)],
  ["head of 64 KiB", filler(64 * 1024)],
  ["exactly max_headers fields", fields(LIMITS.maxHeaders)],
  ["one past max_headers fields", fields(LIMITS.maxHeaders + 1)],
  ["long target", req("", `GET /${"a".repeat(4000)} HTTP/1.1`)],
  ["long field name", req(`X-${"n".repeat(4000)}: 1\r\n`)],
]);

// ---------------------------------------------------------------------------------------------
// Differences, each with its reason. `rfc`: bws disagrees with the `valid` label; `llhttp`:
// bws disagrees with Node (either way; Node stricter on an RFC-invalid head needs no entry);
// `deno`: bws accepts what Deno.serve refuses.

interface Known {
  rfc?: string;
  llhttp?: string;
  deno?: string;
}

const UNKNOWN_METHOD =
  "llhttp only knows registered methods; RFC 9110 §9.1 allows any token and a proxy forwards it";
const LAX_TARGET =
  "bws passes any visible ASCII in the target through byte-for-byte, as llhttp and nginx do " +
  "(browsers send some of these unescaped); the route or upstream decides";

const SAME_LENGTHS = "identical repeated Content-Lengths are read as one (RFC 9110 §8.6 " +
  "allows it; an existing bws test relies on it); the upstream gets one Content-Length";

const KNOWN: Record<string, Known> = {
  "authority-form CONNECT": {
    rfc: "parsed, then answered 501: bws does not tunnel CONNECT",
    llhttp: "parsed, then answered 501: bws does not tunnel CONNECT",
  },
  "Content-Length 15 digits": {
    rfc: "parsed, then answered 413: past the site's max_body_size before any byte is read",
    llhttp: "parsed, then answered 413: past the site's max_body_size before any byte is read",
  },
  "method unknown token": { llhttp: UNKNOWN_METHOD },
  "method lower-case": { llhttp: UNKNOWN_METHOD },
  "method of every tchar": { llhttp: UNKNOWN_METHOD },
  "target with fragment": {
    rfc: LAX_TARGET + "; an existing bws test forwards /f#x as is",
  },
  'target with "': { rfc: LAX_TARGET },
  "target with <": { rfc: LAX_TARGET },
  "target with >": { rfc: LAX_TARGET },
  "target with \\": { rfc: LAX_TARGET },
  "target with ^": { rfc: LAX_TARGET },
  "target with `": { rfc: LAX_TARGET },
  "target with {": { rfc: LAX_TARGET },
  "target with |": { rfc: LAX_TARGET },
  "target with }": { rfc: LAX_TARGET },
  "target with [": { rfc: LAX_TARGET },
  "target with ]": { rfc: LAX_TARGET },
  "target with bad percent-encoding": { rfc: LAX_TARGET },
  "absolute-form other scheme": {
    rfc: "bws is the origin for http and https only; another scheme is answered 400",
  },
  "HTTP/1.2 (a higher minor)": {
    rfc: "bws answers 505 to every version but 1.0 and 1.1, as llhttp does",
  },
  "nine empty lines first": {
    rfc: "bws skips at most 8 empty lines before a request line (bounded work per request)",
  },
  "Host empty": { rfc: "an empty Host names no site bws could route to" },
  "Content-Length twice, same": {
    rfc: SAME_LENGTHS,
    llhttp: SAME_LENGTHS,
  },
  "Content-Length with HTAB around": {
    llhttp: "llhttp 9.3 (node 20) refuses HTAB after a Content-Length value, though OWS " +
      "includes HTAB (RFC 9110 §5.6.3); later llhttp versions accept it",
  },
  "Content-Length 16 digits": { rfc: "bws caps Content-Length at 15 digits (below 2^53)" },
  "Transfer-Encoding gzip, chunked": {
    rfc: "bws cannot decode other codings: 501 (RFC 9112 §6.1)",
  },
  "Transfer-Encoding gzip,chunked": {
    rfc: "bws cannot decode other codings: 501 (RFC 9112 §6.1)",
  },
  "head one past max_header_size": { rfc: "over the configured max_header_size: 431" },
  "head of 64 KiB": { rfc: "over the configured max_header_size: 431" },
  "one past max_headers fields": { rfc: "over the configured max_headers: 431" },
};

// ---------------------------------------------------------------------------------------------
// The reference servers, reached over raw TCP.

const latin1 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 4096)));
  }
  return s;
};
const fromLatin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * Sends `head` on a fresh connection and reads the answer: a 2xx final status is accept;
 * any other status, a close, or nothing within `ms` (the server waits for more) is reject.
 */
async function socketAnswer(port: number, head: Uint8Array, ms = 2500): Promise<Answer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch { /* closed */ }
  }, ms);
  let text = "";
  try {
    try {
      for (let o = 0; o < head.length;) o += await conn.write(head.subarray(o));
    } catch { /* the server may close early: read what it answered */ }
    const buf = new Uint8Array(16384);
    while (true) {
      const status = /^HTTP\/\d\.\d (\d{3})[^\r\n]*\r\n/.exec(text);
      if (status !== null) {
        const code = Number(status[1]);
        if (code >= 200) {
          return { verdict: code < 300 ? "accept" : "reject", detail: status[1] };
        }
        const end = text.indexOf("\r\n\r\n");
        if (end !== -1) {
          text = text.slice(end + 4);
          continue;
        }
      }
      const n = await conn.read(buf);
      if (n === null) return { verdict: "reject", detail: text === "" ? "closed" : "garbled" };
      text += latin1(buf.subarray(0, n));
    }
  } catch (err) {
    return { verdict: "reject", detail: timedOut ? "timeout" : (err as Error).name };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

const NODE_SERVER = `
const http = require("node:http");
const ok = "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok";
const server = http.createServer(
  { maxHeaderSize: ${LIMITS.maxHeaderSize}, insecureHTTPParser: false },
  (req, res) => { res.setHeader("Connection", "close"); res.end("ok"); },
);
server.on("upgrade", (req, socket) => socket.end(ok));
server.on("connect", (req, socket) => socket.end(ok));
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("end", () => process.exit(0)).resume();
`;

interface NodeServer {
  port: number;
  version: string;
  close(): Promise<void>;
}

/**
 * The versions of the `node` binary and its llhttp, or why there is none. Without a node on PATH,
 * Deno puts its own node-compatible shim there, which has no llhttp: that counts as none.
 */
async function nodeVersion(): Promise<{ version: string } | { missing: string }> {
  const probe = "console.log(JSON.stringify([process.version, process.versions.llhttp ?? null, " +
    "process.versions.deno ?? null]))";
  try {
    const out = await new Deno.Command("node", { args: ["-e", probe], stdout: "piped" }).output();
    if (!out.success) return { missing: `node -e failed (exit ${out.code})` };
    const [node, llhttp, deno] = JSON.parse(new TextDecoder().decode(out.stdout));
    if (deno !== null) return { missing: `"node" on PATH is Deno ${deno}'s shim, not Node` };
    if (llhttp === null) return { missing: `node ${node} reports no llhttp` };
    return { version: `${node} (llhttp ${llhttp})` };
  } catch (err) {
    return { missing: `no node binary on PATH (${(err as Error).message})` };
  }
}

/** Node's http server in a child process. */
async function startNode(version: string): Promise<NodeServer> {
  const child = new Deno.Command("node", {
    args: ["-e", NODE_SERVER],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
  }
  const port = Number(printed.trim());
  if (!(port > 0)) {
    child.kill();
    await child.status;
    throw new Error(`Cannot start node's http server: it printed ${JSON.stringify(printed)}`);
  }
  return {
    port,
    version,
    async close() {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    },
  };
}

/** Runs `task` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, task: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

// ---------------------------------------------------------------------------------------------

interface Row {
  c: HeadCase;
  bws: Answer;
  deno: Answer;
  node: Answer | null;
}

/** A compact table of rows, one line each, for assertion failures. */
function table(rows: Row[], why: (r: Row) => string): string {
  const cell = (a: Answer | null) => a === null ? "-" : `${a.verdict} (${a.detail})`;
  return rows.map((r) =>
    `${r.c.name.padEnd(44)} | rfc ${r.c.valid ? "valid  " : "invalid"} | bws ${
      cell(r.bws).padEnd(18)
    } | llhttp ${cell(r.node).padEnd(18)} | deno ${cell(r.deno).padEnd(18)} | ${why(r)}`
  ).join("\n");
}

const NODE = await nodeVersion();

describe("request-head parser, differential against llhttp (node) and Deno.serve", () => {
  let rows: Row[] = [];
  let node: NodeServer | null = null;
  let deno: Deno.HttpServer<Deno.NetAddr>;
  let upstream: Deno.HttpServer<Deno.NetAddr>;
  let bws: TestBws;

  before(async () => {
    deno = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("ok"),
    );
    upstream = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("ok"),
    );
    bws = await startBws(`
[server]
grace_period = 1
[server.limits]
max_header_size = ${LIMITS.maxHeaderSize}
max_headers = ${LIMITS.maxHeaders}
[server.timeouts]
header = 2
body = 2

[[sites]]
name = "any"
hostname = "a.test"
port = 0
bind = "127.0.0.1"

[sites.proxy]
enabled = true
[[sites.proxy.upstreams]]
name = "ok"
url = "http://127.0.0.1:${upstream.addr.port}"
[[sites.proxy.routes]]
path = "/"
upstream = "ok"
`);
    bwsPort = bws.port;
    if ("version" in NODE) node = await startNode(NODE.version);
    else console.log(`llhttp half skipped: ${NODE.missing}`);
    const nodeServer = node;
    rows = await pool(CASES, 8, async (c) => {
      const head = fromLatin1(c.head);
      const [bws, d, n] = await Promise.all([
        bwsAnswer(head),
        socketAnswer(deno.addr.port, head),
        nodeServer === null ? null : socketAnswer(nodeServer.port, head),
      ]);
      return { c, bws, deno: d, node: n };
    });
    // BWS_DIFF_TABLE=1 prints every verdict (the test needs --allow-env, as -A gives).
    if (Deno.env.get("BWS_DIFF_TABLE") === "1") console.log(table(rows, () => ""));
  });

  after(async () => {
    await bws?.close();
    await upstream?.shutdown();
    await deno?.shutdown();
    await node?.close();
  });

  it("has ~200 distinct, named heads and a reason for every listed difference", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(200);
    const names = CASES.map((c) => c.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(Object.keys(KNOWN).filter((n) => !names.includes(n))).toEqual([]);
  });

  it("accepts exactly the heads the RFC allows, except the listed policy choices", () => {
    const bad = rows.filter((r) =>
      (r.bws.verdict === "accept") !== r.c.valid && KNOWN[r.c.name]?.rfc === undefined
    );
    expect({ disagreements: "\n" + table(bad, () => "bws vs RFC label") + "\n" })
      .toEqual({ disagreements: "\n\n" });
    const stale = rows.filter((r) =>
      KNOWN[r.c.name]?.rfc !== undefined && (r.bws.verdict === "accept") === r.c.valid
    );
    expect(stale.map((r) => r.c.name)).toEqual([]);
  });

  it("accepts nothing Deno.serve refuses, unless listed", () => {
    const bad = rows.filter((r) =>
      r.bws.verdict === "accept" && r.deno.verdict === "reject" &&
      KNOWN[r.c.name]?.deno === undefined
    );
    expect({ disagreements: "\n" + table(bad, () => "bws accepts, Deno.serve refuses") + "\n" })
      .toEqual({ disagreements: "\n\n" });
    const stricter = rows.filter((r) => r.bws.verdict === "reject" && r.deno.verdict === "accept");
    console.log(`bws refuses ${stricter.length} of ${rows.length} heads that Deno.serve accepts`);
  });

  const skip = "missing" in NODE ? `llhttp half skipped: ${NODE.missing}` : false;
  it("agrees with llhttp: accepts nothing it refuses, refuses no RFC-valid head it accepts", {
    skip,
  }, () => {
    const version = node!.version;
    const needsEntry = (r: Row) =>
      r.node !== null && (
        (r.bws.verdict === "accept" && r.node.verdict === "reject") ||
        (r.bws.verdict === "reject" && r.node.verdict === "accept" && r.c.valid &&
          KNOWN[r.c.name]?.rfc === undefined)
      );
    const bad = rows.filter((r) => needsEntry(r) && KNOWN[r.c.name]?.llhttp === undefined);
    expect({
      node: version,
      disagreements: "\n" + table(bad, () => "bws vs llhttp") + "\n",
    }).toEqual({ node: version, disagreements: "\n\n" });
    // A listed difference that no longer occurs (another node version) is reported, not failed.
    const stale = rows.filter((r) => KNOWN[r.c.name]?.llhttp !== undefined && !needsEntry(r));
    if (stale.length > 0) {
      console.log(`llhttp (node ${version}) now agrees on: ${stale.map((r) => r.c.name)}`);
    }
  });
});

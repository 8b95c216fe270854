/**
 * Micro-benchmark of the HTTP/1.1 request-head parser: findRequestHeadEnd + parseRequestHead on
 * a wrk-style head (4 lines) and a browser-like head (~12 headers, ~800 bytes), beside a bare
 * TextDecoder.decode of the same bytes as a floor.
 *
 *   deno bench scripts/bench/request_head_bench.ts
 *
 * @module
 */

import { findRequestHeadEnd, parseRequestHead } from "../../src/http1/request_head.ts";

const limits = { maxHeaderSize: 16 * 1024, maxHeaders: 100 };
const encode = (s: string) => new TextEncoder().encode(s);

const small = encode(
  "GET /api/x HTTP/1.1\r\nHost: bench.test:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
);
const browser = encode(
  "GET /assets/app/main.3f9a1c.js?v=20240611&lang=en HTTP/1.1\r\n" +
    "Host: www.example.com\r\n" +
    "Connection: keep-alive\r\n" +
    'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n' +
    "sec-ch-ua-mobile: ?0\r\n" +
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " +
    "Chrome/124.0.0.0 Safari/537.36\r\n" +
    'sec-ch-ua-platform: "Linux"\r\n' +
    "Accept: */*\r\n" +
    "Sec-Fetch-Site: same-origin\r\n" +
    "Sec-Fetch-Mode: no-cors\r\n" +
    "Sec-Fetch-Dest: script\r\n" +
    "Referer: https://www.example.com/products/list?page=2&sort=price\r\n" +
    "Accept-Encoding: gzip, deflate, br, zstd\r\n" +
    "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n" +
    "Cookie: session=8c3f0e5d2b7a4e1f9a6d3c0b8e5f2a7d; theme=dark; consent=1\r\n\r\n",
);

let sink = 0;
const decoder = new TextDecoder();

for (const [name, head] of [["wrk-style", small], ["browser-like", browser]] as const) {
  Deno.bench(
    `${name} head (${head.length} B): find + parse`,
    { group: name, baseline: true },
    () => {
      const end = findRequestHeadEnd(head, 0, head.length, limits);
      sink += parseRequestHead(head, 0, end, limits).headers.length;
    },
  );
  Deno.bench(`${name} head: find only`, { group: name }, () => {
    sink += findRequestHeadEnd(head, 0, head.length, limits);
  });
  Deno.bench(`${name} head: TextDecoder.decode only (floor)`, { group: name }, () => {
    sink += decoder.decode(head.subarray(0, head.length)).length;
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});

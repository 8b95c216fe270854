/**
 * Response heads as bytes: status lines built once per status, and a head string encoded into a
 * reusable buffer in one call (header values are byte strings: chars 0x80-0xFF go out as single
 * latin1 bytes, as they arrived).
 *
 * @module
 */

const REASONS: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
  508: "Loop Detected",
  511: "Network Authentication Required",
};

/** The standard reason phrase of `status`, or "" (RFC 9112 §4 allows an empty one). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

const statusLines: string[] = [];

/** `HTTP/1.1 <status> <reason>\r\n`, built once per status. */
export function statusLine(status: number): string {
  return statusLines[status] ??= `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
}

const encoder = new TextEncoder();

/**
 * Encodes `head` into `buf` from offset 0 and returns the byte count, or -1 when `buf` is too
 * small (the caller grows it; `head.length` bytes always suffice).
 */
export function encodeHead(head: string, buf: Uint8Array): number {
  if (buf.length < head.length) return -1;
  const r = encoder.encodeInto(head, buf);
  if (r.read === head.length && r.written === head.length) return head.length;
  // Not all ASCII: write each char as one latin1 byte (header values are byte strings).
  for (let i = 0; i < head.length; i++) buf[i] = head.charCodeAt(i) & 0xff;
  return head.length;
}

/** A whole fixed answer (status line, headers, short text body) as bytes, for refusals. */
export interface FixedResponse {
  readonly bytes: Uint8Array;
  /** Bytes of its body (what the access log counts). */
  readonly bodyLength: number;
}

/** The front end's own answer to a request it refuses: `<status> <reason>` and a close. */
export function fixedResponse(status: number, extra = ""): FixedResponse {
  const body = `${status} ${reasonPhrase(status)}\n`;
  const bytes = encoder.encode(
    statusLine(status) + "content-type: text/plain; charset=utf-8\r\n" +
      `content-length: ${body.length}\r\n` + extra + "connection: close\r\n\r\n" + body,
  );
  return { bytes, bodyLength: body.length };
}

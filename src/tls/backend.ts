/**
 * What the TLS listener needs from one bound socket that serves HTTPS.
 *
 * @module
 */

/** The request handler a TLS listener runs (fetch style). */
export type TlsHandler = (
  req: Request,
  info: {
    remoteAddr: { hostname: string; port: number };
    /** Settles once the response has been sent or abandoned (as Deno.serve's). */
    completed?: Promise<void>;
  },
) => Response | Promise<Response>;

/** Where and how a backend binds and serves. */
export interface BackendOptions {
  readonly hostname: string;
  readonly port: number;
  /** Sets SO_REUSEPORT so two backends can share the port during a hand-over. */
  readonly reusePort: boolean;
  readonly handler: TlsHandler;
  readonly onError?: (err: unknown) => Response;
  /** Milliseconds a client may take to complete its TLS handshake (SNI path only; Deno.serve
   * has no such limit). @default 10000 */
  readonly handshakeTimeoutMs?: number;
}

/** One listening socket with its connections. */
export interface Backend {
  /** The bound address (the real port when 0 was asked). */
  readonly addr: { hostname: string; port: number };
  /** Closes the listening socket now; open connections go on. */
  stopAccepting(): void;
  /** Stops accepting, lets in-flight requests finish, then closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * True when this process runs with `--unstable-net`, which `reusePort` needs (without it Deno
 * exits the process instead of throwing). `Deno.listenDatagram` exists only under that flag.
 */
export function canReusePort(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}

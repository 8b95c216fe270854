/** Config files for the benchmarked servers, rendered as text. */

/** Temp paths nginx needs when it does not run as root. */
function nginxTempPaths(dir: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${dir}/${kind}_temp;`)
    .join("\n");
}

function nginxMain(dir: string, http: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${nginxTempPaths(dir)}
${http}
}
`;
}

/** nginx answering `hello world\n` to everything: the shared backend. */
export function nginxBackendConf(dir: string, port: number): string {
  return nginxMain(
    dir,
    `  server {
    listen 127.0.0.1:${port};
    location / { default_type text/plain; return 200 "hello world\\n"; }
  }`,
  );
}

/** PEM files of one certificate and its key. */
export interface CertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Certificates for the two bench sites on one TLS port: the same files for both (one
 * certificate on the port) or different ones (chosen by SNI).
 */
export interface BenchTls {
  /** Covers `BENCH_HOST`, www.bench.test and `TLS_NAME`. */
  readonly api: CertFiles;
  /** Covers static.bench.test. */
  readonly static: CertFiles;
}

/** The name HTTPS clients connect to (so SNI carries a name that resolves to loopback). */
export const TLS_NAME = "localhost";

function upstreamBlock(backendPort: number): string {
  return `  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 32;
    keepalive_requests 1000000;
  }`;
}

/**
 * The server blocks of an nginx proxy: one plain server, or with `tls` the two bench sites on
 * one TLS port (the API site, default, with `locations`; the static site answering itself).
 */
function nginxServers(port: number, locations: string, tls?: BenchTls): string {
  if (!tls) {
    return `  server {
    listen 127.0.0.1:${port};
${locations}
  }`;
  }
  // nginx before 1.23.4 leaves TLSv1.3 off unless asked; bws (rustls) negotiates it.
  const certs = (c: CertFiles) =>
    `    ssl_protocols TLSv1.2 TLSv1.3;\n` +
    `    ssl_certificate ${c.certFile};\n    ssl_certificate_key ${c.keyFile};`;
  return `  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name ${BENCH_HOST} www.bench.test ${TLS_NAME};
${certs(tls.api)}
${locations}
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name static.bench.test;
${certs(tls.static)}
    location / { default_type text/html; return 200 "<h1>static</h1>\\n"; }
  }`;
}

/** nginx as a keep-alive reverse proxy (access log off), over TLS when `tls` is given. */
export function nginxProxyConf(
  dir: string,
  port: number,
  backendPort: number,
  tls?: BenchTls,
): string {
  return nginxMain(
    dir,
    `${upstreamBlock(backendPort)}
${
      nginxServers(
        port,
        `    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`,
        tls,
      )
    }`,
  );
}

/** nginx relaying WebSockets to `upstreamPort` (Upgrade and Connection passed on). */
export function nginxWebSocketConf(dir: string, port: number, upstreamPort: number): string {
  return nginxMain(
    dir,
    `  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }`,
  );
}

/**
 * nginx doing the per-request work of the bws bench config: an access log line per request to a
 * file (buffered, as bws batches its log), X-Forwarded-For/-Proto/-Host, Forwarded and
 * X-Request-ID upstream, X-Request-ID and X-Content-Type-Options back to the client.
 */
export function nginxSameWorkConf(
  dir: string,
  port: number,
  backendPort: number,
  tls?: BenchTls,
): string {
  return nginxMain(
    dir,
    `  log_format bws '$time_iso8601 $remote_addr "$request" $status $body_bytes_sent '
                 '$request_time $upstream_addr $request_id';
${upstreamBlock(backendPort)}
${
      nginxServers(
        port,
        `    location /api/ {
      access_log ${dir}/access.log bws buffer=64k flush=1s;
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$http_host\\"";
      proxy_set_header X-Request-ID $request_id;
      add_header X-Request-ID $request_id always;
      add_header X-Content-Type-Options nosniff always;
    }`,
        tls,
      )
    }`,
  );
}

/** HAProxy, one thread, HTTP mode, connection reuse, no logs. */
export function haproxyConf(port: number, backendPort: number): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}
  default_backend app

backend app
  server s1 127.0.0.1:${backendPort}
`;
}

/** Caddyfile with `reverse_proxy` (keep-alive by default), no admin, no automatic HTTPS. */
export function caddyfile(port: number, backendPort: number): string {
  return `{
  admin off
  auto_https off
}

:${port} {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:${backendPort}
}
`;
}

/** Ports and paths of the bws benchmark config. */
export interface BwsBenchConfig {
  readonly port: number;
  /** The shared backend (`/api/` goes there). */
  readonly backendPort: number;
  /** The Deno backend for the large-body routes (`/large/`). */
  readonly streamPort: number;
  readonly accessLogPath: string;
  readonly staticDir: string;
  /** The WebSocket echo upstream of the `/ws` route. @default backendPort */
  readonly wsPort?: number;
  /** Serve both sites over TLS with these certificates. @default plain HTTP */
  readonly tls?: BenchTls;
}

/** Host header the benchmark sends to every proxy (bws's first site). */
export const BENCH_HOST = "api.bench.test";

/**
 * A realistic bws config: two sites on one port, several routes (the benchmarked one is
 * `/api/` → group "app", `/ws` a WebSocket route), forwarded headers on (defaults),
 * `X-Request-ID = "auto"`, access log to a file at level info, the client timeouts and limits
 * at their defaults (written out, so the bench shows what was in force). With `tls` both sites
 * are served over TLS on the port, and the API site also answers to `TLS_NAME`.
 */
export function bwsToml(c: BwsBenchConfig): string {
  const ssl = (files: CertFiles | undefined) =>
    files
      ? `
[sites.ssl]
enabled = true
cert_file = "${files.certFile}"
key_file = "${files.keyFile}"
`
      : "";
  const apiNames = c.tls ? `["www.bench.test", "${TLS_NAME}"]` : `["www.bench.test"]`;
  return `[server]
name = "bws bench"
max_body_size = "2GiB"   # the large upload test sends 1 GiB

[server.timeouts]
header = 10
keep_alive = 75
body = 30
send = 60
tls_handshake = 10

[server.limits]
max_connections = 20000
max_connections_per_ip = 0
max_header_size = "32KiB"
max_headers = 100

[logging]
level = "info"
format = "text"
access_log = true
output = "file"
file_path = "${c.accessLogPath}"

[[sites]]
name = "api"
hostname = "${BENCH_HOST}"
hostnames = ${apiNames}
port = ${c.port}
bind = "127.0.0.1"
default = true
${ssl(c.tls?.api)}
[sites.headers]
"X-Content-Type-Options" = "nosniff"

[sites.proxy]
enabled = true

[[sites.proxy.upstreams]]
name = "app"
url = "http://127.0.0.1:${c.backendPort}"

[[sites.proxy.upstreams]]
name = "auth"
url = "http://127.0.0.1:${c.backendPort}"

[[sites.proxy.upstreams]]
name = "stream"
url = "http://127.0.0.1:${c.streamPort}"

[[sites.proxy.upstreams]]
name = "ws"
url = "http://127.0.0.1:${c.wsPort ?? c.backendPort}"

[[sites.proxy.routes]]
path = "/api/"
upstream = "app"

[[sites.proxy.routes]]
path = "/auth/"
upstream = "auth"
strip_prefix = true

[[sites.proxy.routes]]
path = "/large/"
upstream = "stream"

[[sites.proxy.routes]]
path = "/ws"
upstream = "ws"
websocket = true

[sites.proxy.headers.add]
"X-Request-ID" = "auto"

[[sites]]
name = "static"
hostname = "static.bench.test"
port = ${c.port}
bind = "127.0.0.1"
static_dir = "${c.staticDir}"
${ssl(c.tls?.static)}`;
}

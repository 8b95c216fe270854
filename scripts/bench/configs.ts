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

/** nginx as a keep-alive reverse proxy (access log off). */
export function nginxProxyConf(dir: string, port: number, backendPort: number): string {
  return nginxMain(
    dir,
    `  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 32;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
  );
}

/**
 * nginx doing the per-request work of the bws bench config: an access log line per request to a
 * file (buffered, as bws batches its log), X-Forwarded-For/-Proto/-Host and X-Request-ID
 * upstream, X-Request-ID and X-Content-Type-Options back to the client.
 */
export function nginxSameWorkConf(dir: string, port: number, backendPort: number): string {
  return nginxMain(
    dir,
    `  log_format bws '$time_iso8601 $remote_addr "$request" $status $body_bytes_sent '
                 '$request_time $upstream_addr $request_id';
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 32;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    access_log ${dir}/access.log bws buffer=64k flush=1s;
    location /api/ {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-ID $request_id;
      add_header X-Request-ID $request_id always;
      add_header X-Content-Type-Options nosniff always;
    }
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
}

/** Host header the benchmark sends to every proxy (bws's first site). */
export const BENCH_HOST = "api.bench.test";

/**
 * A realistic bws config: two sites on one port, several routes (the benchmarked one is
 * `/api/` → group "app"), forwarded headers on (defaults), `X-Request-ID = "auto"`, access log
 * to a file at level info.
 */
export function bwsToml(c: BwsBenchConfig): string {
  return `[server]
name = "bws bench"
max_body_size = "2GiB"   # the large upload test sends 1 GiB

[logging]
level = "info"
format = "text"
access_log = true
output = "file"
file_path = "${c.accessLogPath}"

[[sites]]
name = "api"
hostname = "${BENCH_HOST}"
hostnames = ["www.bench.test"]
port = ${c.port}
bind = "127.0.0.1"
default = true

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
upstream = "app"
websocket = true

[sites.proxy.headers.add]
"X-Request-ID" = "auto"

[[sites]]
name = "static"
hostname = "static.bench.test"
port = ${c.port}
bind = "127.0.0.1"
static_dir = "${c.staticDir}"
`;
}

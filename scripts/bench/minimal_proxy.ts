/**
 * The minimal Deno proxy bws is compared with:
 * `deno run -A scripts/bench/minimal_proxy.ts <port> http://127.0.0.1:<backend port>`.
 */
const [port, backend] = Deno.args;

Deno.serve({ hostname: "127.0.0.1", port: Number(port) }, (req) => {
  const url = new URL(req.url);
  return fetch(backend + url.pathname + url.search, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: "manual",
  });
});

/**
 * A small demo backend: answers JSON naming itself and echoing what it received, `/health`
 * with 200, and WebSocket upgrades with an echo.
 *
 * @module
 */

export interface DemoBackend {
  readonly id: string;
  readonly port: number;
  shutdown(): Promise<void>;
}

/** Starts one demo backend on 127.0.0.1:`port` (0 = any free port). */
export function startDemoBackend(id: string, port: number): DemoBackend {
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/health") return Response.json({ ok: true, backend: id });
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) =>
        socket.send(typeof e.data === "string" ? `${id}: ${e.data}` : e.data);
      return response;
    }
    return Response.json({
      backend: id,
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
    });
  });
  return {
    id,
    port: (server.addr as Deno.NetAddr).port,
    shutdown: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 3001);
  const b = startDemoBackend(`backend-${port}`, port);
  console.log(`demo backend ${b.id} on http://127.0.0.1:${b.port}`);
}

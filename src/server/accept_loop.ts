/**
 * Accepts connections on one listening socket for as long as it is open, within the process's
 * connection budget. Running out of file descriptors (EMFILE/ENFILE) never stops it: it pauses
 * for a moment, says so in the log (at most once a second) and tries again, as nginx does.
 *
 * @module
 */

import { isDescriptorShortage } from "../net/descriptor_shortage.ts";
import type { ConnectionGate } from "./connection_gate.ts";

/** How long accepting pauses after the process ran out of descriptors. */
const FD_PAUSE_MS = 100;
/** How long accepting pauses after any other accept error (so it never spins). */
const ERROR_PAUSE_MS = 10;

/** What an accept loop reports. */
export interface AcceptEvents {
  /** A connection was accepted and counted by the gate; the callee owns it and must call
   * `release` once it is closed. */
  onConnection(conn: Deno.Conn, release: () => void): void;
  /** Accepting failed for lack of descriptors (called at most once a second). */
  onDescriptorShortage(err: Error): void;
  /** Accepting failed for another reason (rate limited the same way). */
  onAcceptError(err: Error): void;
  /**
   * The address a new connection counts against for `max_connections_per_ip`; null: the total
   * only (a trusted balancer on a PROXY protocol port). @default the peer's address
   */
  perIpKey?(ip: string): string | null;
}

/** A running accept loop. */
export interface AcceptLoop {
  /** Settles once the listener is closed and the loop has ended. */
  readonly done: Promise<void>;
}

/**
 * Runs the loop over `listener` until it is closed (closing the listener is how it stops).
 * A connection from an address past `max_connections_per_ip` is closed at once.
 */
export function runAcceptLoop(
  listener: Deno.Listener,
  gate: ConnectionGate,
  events: AcceptEvents,
): AcceptLoop {
  return { done: loop(listener, gate, events) };
}

async function loop(listener: Deno.Listener, gate: ConnectionGate, events: AcceptEvents) {
  let lastReport = 0;
  const report = (err: Error, shortage: boolean) => {
    const now = Date.now();
    if (now - lastReport < 1000) return;
    lastReport = now;
    if (shortage) events.onDescriptorShortage(err);
    else events.onAcceptError(err);
  };
  while (true) {
    const wait = gate.room();
    if (wait !== null) await wait;
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (isClosed(err)) return;
      const shortage = isDescriptorShortage(err);
      report(err as Error, shortage);
      await new Promise((r) => setTimeout(r, shortage ? FD_PAUSE_MS : ERROR_PAUSE_MS));
      continue;
    }
    const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
    const ip = events.perIpKey === undefined ? peer : events.perIpKey(peer);
    if (!gate.admit(ip)) {
      try {
        conn.close();
      } catch {
        // already gone
      }
      continue;
    }
    let released = false;
    events.onConnection(conn, () => {
      if (released) return;
      released = true;
      gate.release(ip);
    });
  }
}

/** The listener was closed (the normal way to stop the loop). */
function isClosed(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    (err instanceof Error && /closed|bad resource/i.test(err.message));
}

/**
 * The worker thread behind `WorkerBcryptVerifier`: runs bcrypt comparisons off the thread that
 * serves requests (one check at cost 10 takes ~60 ms of CPU; on the main thread it would stall
 * every other connection for that long).
 *
 * Messages in: `{ id, password, hash }`; out: `{ id, ok }` or `{ id, error }`.
 *
 * @module
 */

import bcrypt from "bcryptjs";
import { errorText } from "../log/error_text.ts";

interface Job {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => {
  const { id, password, hash } = e.data;
  try {
    scope.postMessage({ id, ok: bcrypt.compareSync(password, hash) });
  } catch (err) {
    scope.postMessage({ id, error: errorText(err) });
  }
};

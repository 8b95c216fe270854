/** INTERIM stub (replaced by the parser branch). @module */
import { ChunkedDecoder as Inner } from "../upstream/chunked_decoder.ts";
import { HttpError } from "./errors.ts";
export class ChunkedBodyDecoder {
  #inner = new Inner();
  consumed = 0;
  produced = 0;
  get done(): boolean {
    return this.#inner.done;
  }
  decode(buf: Uint8Array, start: number, end: number, out: Uint8Array, outStart: number): void {
    try {
      this.#inner.decode(buf, start, end, out.subarray(outStart));
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    this.consumed = this.#inner.consumed;
    this.produced = this.#inner.produced;
  }
}

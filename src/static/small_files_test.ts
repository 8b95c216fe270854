import { describe, it } from "node:test";
import { expect } from "expect";
import { SmallFiles } from "./small_files.ts";

describe("SmallFiles", () => {
  it("hits only while a stat shows the same file; a rewrite or a replacement misses", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_small_files_" });
    try {
      const path = `${dir}/a.txt`;
      await Deno.writeTextFile(path, "one");
      const files = new SmallFiles(1024, 0);
      const info = Deno.statSync(path);
      expect(files.get(path, info)).toBeNull();
      expect(files.accepts(info, Date.now())).toBe(true);
      files.put(path, info, Deno.readFileSync(path));
      expect(new TextDecoder().decode(files.get(path, Deno.statSync(path)) ?? undefined)).toBe(
        "one",
      );
      // Same size, rewritten in place: its times move on (and a rename gives a new inode).
      await new Promise((r) => setTimeout(r, 20));
      await Deno.writeTextFile(path, "two");
      expect(files.get(path, Deno.statSync(path))).toBeNull();
      expect(files.bytes).toBe(0);
      files.put(path, Deno.statSync(path), Deno.readFileSync(path));
      await Deno.writeTextFile(`${dir}/b.txt`, "two");
      await Deno.rename(`${dir}/b.txt`, path);
      expect(files.get(path, Deno.statSync(path))).toBeNull();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("remembers a file only once it has been left alone long enough, and only small ones", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_small_files_" });
    try {
      await Deno.writeTextFile(`${dir}/new.txt`, "fresh");
      await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(16 * 1024 + 1));
      const files = new SmallFiles(1 << 20, 2000);
      const fresh = Deno.statSync(`${dir}/new.txt`);
      expect(files.accepts(fresh, Date.now())).toBe(false);
      expect(files.accepts(fresh, Date.now() + 2500)).toBe(true);
      expect(files.accepts(Deno.statSync(`${dir}/big.bin`), Date.now() + 2500)).toBe(false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("keeps at most maxBytes, least recently used out", async () => {
    const dir = await Deno.makeTempDir({ prefix: "bws_small_files_" });
    try {
      const files = new SmallFiles(250, 0);
      const paths = ["a", "b", "c"].map((n) => `${dir}/${n}`);
      for (const p of paths) await Deno.writeFile(p, new Uint8Array(100));
      const put = (p: string) => files.put(p, Deno.statSync(p), Deno.readFileSync(p));
      put(paths[0]);
      put(paths[1]);
      expect(files.get(paths[0], Deno.statSync(paths[0]))).not.toBeNull(); // a is now the newest
      put(paths[2]); // 300 bytes: b, the least recently used, goes
      expect(files.bytes).toBe(200);
      expect(files.get(paths[1], Deno.statSync(paths[1]))).toBeNull();
      expect(files.get(paths[0], Deno.statSync(paths[0]))).not.toBeNull();
      expect(files.get(paths[2], Deno.statSync(paths[2]))).not.toBeNull();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

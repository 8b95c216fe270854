import { describe, it } from "node:test";
import { expect } from "expect";
import { parseProm } from "../../tests/helpers/prom_parse.ts";
import { Metrics } from "./metrics.ts";

describe("bws_refused_total", () => {
  it("counts refusals by site and rule and renders valid Prometheus text", () => {
    const m = new Metrics();
    m.recordRequest("main", "", 200, 0.001, 0, 1);
    for (let i = 0; i < 15; i++) m.recordRefusal("main", "rate_limit");
    m.recordRefusal("main", "access");
    m.recordRefusal('we"ird', "forward_auth");
    const p = parseProm(m.render());
    expect(p.families.get("bws_refused_total")?.type).toBe("counter");
    expect(p.value("bws_refused_total", { site: "main", rule: "rate_limit" })).toBe(15);
    expect(p.value("bws_refused_total", { site: "main", rule: "access" })).toBe(1);
    expect(p.value("bws_refused_total", { site: "main", rule: "basic_auth" })).toBe(0);
    expect(p.value("bws_refused_total", { site: 'we"ird', rule: "forward_auth" })).toBe(1);
  });

  it("has the family with no samples before any refusal", () => {
    const p = parseProm(new Metrics().render());
    expect(p.families.get("bws_refused_total")?.samples).toEqual([]);
  });

  it("a call after the first allocates nothing: no young-generation GC in 5M refusals", async () => {
    // Run in a child with V8's GC trace: 5M calls that each allocated even one boxed number
    // (16 bytes) would fill the young generation dozens of times. A loop that allocates one
    // small object per iteration is the control that shows the trace sees allocation.
    const metrics = new URL("./metrics.ts", import.meta.url).href;
    const dir = await Deno.makeTempDir({ prefix: "bws-refusal-gc-" });
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { Metrics } from ${JSON.stringify(metrics)};
const m = new Metrics();
const refuse = (n: number) => { for (let i = 0; i < n; i++) m.recordRefusal("main", "rate_limit"); };
const boxes: unknown[] = [null];
const box = (n: number) => { for (let i = 0; i < n; i++) boxes[0] = { i }; };
refuse(500_000);
box(1_000);
(globalThis as { gc?: () => void }).gc?.();
console.log("BEGIN refuse");
refuse(5_000_000);
console.log("END refuse");
console.log("BEGIN box");
box(5_000_000);
console.log("END box");
`,
    );
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--v8-flags=--trace-gc,--expose-gc", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      expect(out.code).toBe(0);
      const scavenges = (phase: string) => {
        const body = text.slice(text.indexOf(`BEGIN ${phase}`), text.indexOf(`END ${phase}`));
        return body.split("\n").filter((l) => l.includes("Scavenge")).length;
      };
      expect(scavenges("box")).toBeGreaterThan(10);
      expect(scavenges("refuse")).toBe(0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

import { describe, it } from "node:test";
import { expect } from "expect";
import { configFromObject, parseConfigText } from "./load.ts";
import { substituteString } from "./env_substitution.ts";
import { ConfigError, type ConfigIssue } from "./types.ts";

const ENV: Record<string, string> = {
  HOST: "example.com",
  PORT: "8081",
  KEY: "s3cr3t",
  EMPTY: "",
  DOLLARS: "a$b${NOT_EXPANDED}",
  ON: "true",
  GRACE: "2.5",
};
const env = (name: string) => ENV[name];
const load = (text: string) => parseConfigText(text, { file: "bws.toml", baseDir: "/srv", env });

function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("config was accepted");
}

const site = (extra = "") =>
  `[[sites]]
name = "main"
port = 8080
static_dir = "public"
${extra}`;

describe("${NAME} in config values", () => {
  it("substitutes variables, defaults and $$ in every string value", () => {
    const c = load(`[management]
api_key = "\${KEY}"

[[sites]]
name = "\${SITE_NAME:-main}"
hostname = "\${HOST}"
hostnames = ["www.\${HOST}", "\${MISSING:-alt.example.org}"]
port = 8080
static_dir = "/var/\${EMPTY:-www}"

[sites.headers]
"X-Price" = "$$5 and $\${HOST}"
"X-Raw" = "\${DOLLARS}"
"X-Empty" = "[\${EMPTY}]"
`);
    expect(c.management.apiKey).toBe("s3cr3t");
    const s = c.sites[0];
    expect(s.name).toBe("main");
    expect(s.hostname).toBe("example.com");
    expect(s.hostnames).toEqual(["www.example.com", "alt.example.org"]);
    // `:-` also applies to a set but empty variable, as in the shell
    expect(s.staticDir).toBe("/var/www");
    expect(s.headers).toEqual({
      "X-Price": "$5 and ${HOST}",
      // a variable's value is not substituted again
      "X-Raw": "a$b${NOT_EXPANDED}",
      "X-Empty": "[]",
    });
  });

  it("lets a number, duration or boolean key take a substituted string", () => {
    const c = load(`[server]
grace_period = "\${GRACE}"

[management]
enabled = "\${ON}"
port = "\${PORT}"

${site()}`);
    expect(c.management.port).toBe(8081);
    expect(c.management.enabled).toBe(true);
    expect(c.server.gracePeriod).toBe(2.5);
    // a literal string is still a type error
    const [issue] = issuesOf(`[management]\nport = "8081"\n${site()}`);
    expect(issue).toMatchObject({ path: "management.port", line: 2 });
    expect(issue.message).toContain("expected an integer");
  });

  it("names the key, the line and the variable when a variable is missing", () => {
    const issues = issuesOf(`[management]
enabled = true
api_key = "\${BWS_API_KEY}"

${site(`hostnames = ["a.example.com", "\${OTHER_HOST}"]`)}`);
    expect(issues).toEqual([
      {
        path: "management.api_key",
        line: 3,
        column: 1,
        message: "Cannot substitute ${BWS_API_KEY}: environment variable BWS_API_KEY is not set " +
          "(set it, or give a default: ${BWS_API_KEY:-default})",
      },
      expect.objectContaining({
        path: "sites[0].hostnames[1]",
        line: 9,
        message: expect.stringContaining("environment variable OTHER_HOST is not set"),
      }),
    ]);
    // reported once: not also as a bad hostname
    expect(issues).toHaveLength(2);
  });

  it("keeps a $ that starts neither form as it is (bcrypt hashes are full of them)", () => {
    expect(substituteString("pa$word", env)).toEqual({ value: "pa$word", used: false });
    const hash = "$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
    expect(substituteString(hash, env)).toEqual({ value: hash, used: false });
    expect(substituteString("end$", env)).toEqual({ value: "end$", used: false });
  });

  it("rejects malformed references", () => {
    const bad = (value: string) => {
      expect(() => substituteString(value, env)).toThrow();
      try {
        substituteString(value, env);
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(bad("${HOST")).toContain('no closing "}"');
    expect(bad("${1X}")).toContain("NAME made of letters, digits and _");
    expect(bad("${A-B}")).toContain('Cannot use "${A-B}"');
    expect(bad("${}")).toContain("expected ${NAME}");
    expect(bad("${X:-a${HOST}}")).toContain("defaults cannot refer to other variables");
    expect(substituteString("${X:-a$$b}", env)).toEqual({ value: "a$b", used: true });
    expect(substituteString("no vars $$", env)).toEqual({ value: "no vars $", used: false });
  });

  it("reads the process environment by default, and leaves object configs as they are", () => {
    const name = `BWS_TEST_${crypto.randomUUID().replaceAll("-", "_")}`;
    Deno.env.set(name, "from-env");
    try {
      const c = parseConfigText(site(`hostname = "\${${name}}.example"`), { baseDir: "/srv" });
      expect(c.sites[0].hostname).toBe("from-env.example");
    } finally {
      Deno.env.delete(name);
    }
    const o = configFromObject({
      sites: [{ name: "a$b", port: 1, static_dir: "/srv/${HOME}" }],
    });
    expect(o.sites[0].name).toBe("a$b");
    expect(o.sites[0].staticDir).toBe("/srv/${HOME}");
  });
});

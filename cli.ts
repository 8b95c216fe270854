/**
 * The `bws` command line. `deno run -A cli.ts --help`; see `src/cli/args.ts` for the options.
 *
 * @module
 */

import { runCli } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}

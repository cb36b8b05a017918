// Runs every spec in tests/web/specs one file at a time (they start their own stacks and
// share two cores), with node's own test runner. Exits non-zero when any test fails.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const specs = readdirSync(path.join(here, "specs")).filter((f) => f.endsWith(".mjs")).sort()
  .map((f) => path.join(here, "specs", f));
const only = process.argv.slice(2);
const chosen = only.length ? specs.filter((s) => only.some((o) => s.includes(o))) : specs;
if (chosen.length === 0) {
  console.error("no web specs found");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...chosen],
                    { stdio: "inherit" });
process.exit(r.status ?? 1);

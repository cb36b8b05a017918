// What the deploy checks share: a program's settings as its --help names them, and the report.
import { execFileSync } from "node:child_process";

const cache = new Map();
// The WARMLINE_* variables PROGRAM reads: every one its --help mentions.
export function flags_of(program) {
  if (!cache.has(program)) {
    const help = execFileSync(program, ["--help"], { encoding: "utf8", env: {} });
    cache.set(program, new Set(help.match(/WARMLINE_[A-Z0-9_]+/g) ?? []));
  }
  return cache.get(program);
}

// Prints each problem, or one line saying what was checked; exits 1 if there was a problem.
export function report(what, checked, problems) {
  for (const p of problems) console.log(`${what}: ${p}`);
  if (problems.length) {
    console.log(`${what}: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log(`${what}: ok (${checked})`);
}

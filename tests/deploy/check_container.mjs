// Checks deploy/container offline, since no container runtime runs here: dockerfile-utils's lint
// (the linter of the Docker language server), then Warmline's rules: two stages on pinned Debian
// 12 bases, the build stage installing what scripts/lib.sh builds with, the runtime stage
// installing the packages of every library the built binaries link (ldd, then dpkg -S), a fixed
// non-root USER, EXPOSE, HEALTHCHECK on /healthz or /readyz, an exec-form ENTRYPOINT, no secret,
// and an ignore file that keeps build trees and Redis data out of the context.
// Usage: node check_container.mjs SOURCE_DIR BIN_DIR [CONTAINERFILE]
// Prints one line per problem and exits 1 if there is any.
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { report } from "./common.mjs";

const require = createRequire(import.meta.url);
const { validate, ValidationSeverity } = require("dockerfile-utils");
const { DockerfileParser } = require("dockerfile-ast");

const [root, bin_dir, file = path.join(root ?? "", "deploy/container/Containerfile")] = process.argv.slice(2);
if (!root || !bin_dir) {
  console.error("usage: node check_container.mjs SOURCE_DIR BIN_DIR [CONTAINERFILE]");
  process.exit(2);
}
const problems = [];
const problem = (what) => problems.push(`${path.relative(root, file)}: ${what}`);
const text = fs.readFileSync(file, "utf8");

// The linter, with every rule it can make stricter made an error.
const strict = Object.fromEntries(
  ["deprecatedMaintainer", "directiveCasing", "emptyContinuationLine", "instructionCasing", "instructionCmdMultiple",
   "instructionEntrypointMultiple", "instructionHealthcheckMultiple", "instructionJSONInSingleQuotes",
   "instructionWorkdirRelative"].map((k) => [k, ValidationSeverity.ERROR]));
for (const d of validate(text, strict)) problem(`line ${d.range.start.line + 1}: ${d.message}`);

// The stages: each FROM starts one.
const stages = [];
for (const ins of DockerfileParser.parse(text).getInstructions()) {
  const keyword = ins.getKeyword().toUpperCase();
  if (keyword === "FROM") stages.push({ from: ins, instructions: [] });
  else if (stages.length) stages.at(-1).instructions.push({ keyword, args: ins.getArgumentsContent() ?? "", ins });
}
const all = (stage, keyword) => stage.instructions.filter((i) => i.keyword === keyword);
if (stages.length < 2) problem(`${stages.length} stage(s); want a build stage and a runtime stage`);

// Pinned bases: Debian 12, a point release (12.N) or a digest, never latest or bare 12.
for (const { from } of stages) {
  const image = from.getImageName(), tag = from.getImageTag() ?? "", digest = from.getImageDigest();
  if (!/(^|\/)debian$/.test(image ?? "")) problem(`FROM ${from.getImage()}: not a Debian image`);
  if (!digest && !/^12\.\d+(-slim)?$/.test(tag)) problem(`FROM ${from.getImage()}: pin a Debian 12 point release (12.N) or a digest`);
}
const [build, runtime] = [stages[0], stages.at(-1)];
const run_text = (stage) => all(stage, "RUN").map((r) => r.args).join("\n");
const apt_packages = (stage) =>
  new Set(
    [...run_text(stage).matchAll(/apt-get install((?:\s+(?:\\\n)?\s*[-\w.+]+)+)/g)]
      .flatMap((m) => m[1].replace(/\\\n/g, " ").split(/\s+/))
      .filter((w) => w && !w.startsWith("-")));
if (stages.length >= 2) {
  if (!build.from.getBuildStage()) problem("the build stage has no name (FROM ... AS build)");
  if (!/-slim$/.test(runtime.from.getImageTag() ?? "") && !runtime.from.getImageDigest())
    problem("the runtime stage is not debian:12.N-slim");

  // The build stage installs what scripts/lib.sh builds with (its PACKAGES less the tools that only
  // test, run Redis or cache).
  const lib = fs.readFileSync(path.join(root, "scripts/lib.sh"), "utf8");
  const listed = lib.match(/PACKAGES=\(([^)]*)\)/)[1].split(/\s+/).filter(Boolean);
  const not_for_building = new Set(["ccache", "doctest-dev", "redis-server", "redis-sentinel", "redis-tools", "openssl", "haproxy", "python3-matplotlib", "gnuplot"]);
  const build_packages = apt_packages(build);
  for (const p of listed) if (!not_for_building.has(p) && !build_packages.has(p)) problem(`the build stage does not install ${p} (scripts/lib.sh)`);

  // The runtime stage: the Debian packages of every library the binaries link, and no more.
  const runtime_packages = apt_packages(runtime);
  const in_slim = new Set(["libc6", "libgcc-s1", "libstdc++6"]);
  const libs = new Set();
  for (const program of ["services/matchmaker/matchmaker", "services/relay/relay", "services/web/warmline-web", "services/admin/warmline-admin"]) {
    try {
      const ldd = execFileSync("ldd", [path.join(bin_dir, program)], { encoding: "utf8" });
      for (const [, lib_path] of ldd.matchAll(/=>\s+(\/\S+)/g)) libs.add(lib_path);
    } catch (e) {
      problem(`cannot list what ${program} links (build it first): ${e.message.split("\n")[0]}`);
    }
  }
  // dpkg knows a file by the path its package ships it at: /lib or /usr/lib (merged /usr), the
  // symlink or the file it points to. One dpkg -S for all of them (each call reads the database).
  const candidates = new Map();
  for (const lib of libs) {
    const real = fs.realpathSync(lib);
    candidates.set(lib, [...new Set([lib, real, real.replace(/^\/usr\//, "/"), lib.replace(/^\/usr\//, "/"), `/usr${lib}`])]);
  }
  let owners = "";
  try {
    owners = execFileSync("dpkg", ["-S", ...[...candidates.values()].flat()], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch (e) {
    owners = e.stdout ?? ""; // exit 1 when some candidate is unknown; the others are still printed
  }
  const owner_of = new Map();
  for (const line of owners.split("\n")) {
    const m = line.match(/^([^:,]+)(?::[\w-]+)?: (\S+)$/);
    if (m) owner_of.set(m[2], m[1]);
  }
  const linked = new Set();
  for (const [lib, paths] of candidates) {
    const owner = paths.map((p) => owner_of.get(p)).find(Boolean);
    if (owner) linked.add(owner);
    else problem(`the binaries link ${lib}, which no Debian package ships`);
  }
  for (const p of linked) if (!in_slim.has(p) && !runtime_packages.has(p)) problem(`the runtime stage lacks ${p}, which the binaries link`);
  for (const p of runtime_packages)
    if (!linked.has(p) && p !== "ca-certificates") problem(`the runtime stage installs ${p}, which no binary links`);

  // A fixed, non-root user.
  const users = all(runtime, "USER");
  const user = users.at(-1)?.args.trim() ?? "";
  if (!/^[1-9]\d*(:\d+)?$/.test(user)) problem(`the runtime stage's last USER is '${user}'; want a fixed numeric non-root uid`);
  else if (!run_text(runtime).includes(`--uid ${user.split(":")[0]}`)) problem(`no useradd --uid ${user.split(":")[0]} for USER ${user}`);

  // Ports, health and the entrypoint.
  if (!all(runtime, "EXPOSE").length) problem("no EXPOSE");
  const health = all(runtime, "HEALTHCHECK").map((h) => h.args).join(" ");
  const script = health.match(/\/opt\/warmline\/bin\/([\w.-]+)/)?.[1];
  const health_text = health + (script && fs.existsSync(path.join(root, "deploy/container", script))
    ? fs.readFileSync(path.join(root, "deploy/container", script), "utf8") : "");
  if (!/\/(healthz|readyz)\b/.test(health_text)) problem("no HEALTHCHECK that asks /healthz or /readyz");
  const entry = all(runtime, "ENTRYPOINT").at(-1)?.args.trim() ?? "";
  if (!entry.startsWith("[")) problem("ENTRYPOINT must be in exec form (JSON), so the service is PID 1 and gets SIGTERM");

  // Files copied from the context exist; stages copied from exist.
  const names = new Set(stages.map((s) => s.from.getBuildStage()).filter(Boolean));
  for (const s of stages)
    for (const c of all(s, "COPY")) {
      const from = c.ins.getFlags().find((f) => f.getName() === "from")?.getValue();
      const sources = c.args.split(/\s+/).filter((w) => !w.startsWith("--")).slice(0, -1);
      if (from && !names.has(from)) problem(`COPY --from=${from}: no such stage`);
      if (!from) for (const src of sources) if (src !== "." && !fs.existsSync(path.join(root, src))) problem(`COPY ${src}: no such file`);
    }
}

// No secret in the image.
for (const s of stages)
  for (const i of s.instructions.filter((i) => i.keyword === "ENV" || i.keyword === "ARG"))
    if (/SECRET|PASSWORD|TOKEN|REDIS_URL/i.test(i.args)) problem(`${i.keyword} ${i.args.split(/\s/)[0]}: secrets are given at run time, never built in`);

// The ignore files: the same for Docker and Podman, keeping out build trees, Redis data, git.
const ignores = [".dockerignore", ".containerignore"].map((f) => path.join(root, f));
if (!ignores.every((f) => fs.existsSync(f))) problem("want .dockerignore and .containerignore at the repository's root");
else {
  const [docker, podman] = ignores.map((f) => fs.readFileSync(f, "utf8"));
  if (docker !== podman) problem(".dockerignore and .containerignore differ");
  const lines = new Set(docker.split("\n").map((l) => l.trim()));
  for (const need of [".git", "build*/", "var/", "**/node_modules/"]) if (!lines.has(need)) problem(`.dockerignore does not leave out ${need}`);
}

// The scripts the image runs parse, and are executable.
for (const [script, shell] of [["entrypoint.sh", "sh"], ["healthcheck.sh", "bash"]]) {
  const p = path.join(root, "deploy/container", script);
  try {
    fs.accessSync(p, fs.constants.X_OK);
    execFileSync(shell, ["-n", p]);
  } catch (e) {
    problem(`deploy/container/${script}: ${e.message.split("\n")[0]}`);
  }
}

report("container", `${stages.length} stages, ${stages.reduce((n, s) => n + s.instructions.length + 1, 0)} instructions`, problems);

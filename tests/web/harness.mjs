// The web tests' stack: a fresh redis-server, relay, matchmaker and warmline-web on free
// loopback ports, accounts made with warmline-admin, Debian's Chromium through playwright-core,
// and the terminal client driven through its stdin and stdout. Nothing here is a fake.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, mkdir, rm, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD = path.resolve(ROOT, process.env.WARMLINE_BUILD_DIR || "build");
export const SCREENSHOTS = path.join(BUILD, "screenshots");
const CHROMIUM = process.env.WARMLINE_CHROMIUM || "/usr/bin/chromium";
const CATALOGUE = path.join(ROOT, "deploy/catalogue.json");
export const DEFAULT_LOCALE = "en-US";
const STATIC = path.join(ROOT, "services/web/static");

const bin = {
  redis: "redis-server",
  relay: path.join(BUILD, "services/relay/relay"),
  matchmaker: path.join(BUILD, "services/matchmaker/matchmaker"),
  web: path.join(BUILD, "services/web/warmline-web"),
  admin: path.join(BUILD, "services/admin/warmline-admin"),
  client: path.join(BUILD, "clients/warmline-client"),
};

// Poll `check` until it returns something truthy or `ms` pass; throws `what` on timeout. The
// way to wait for a condition here: never a bare sleep.
export async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(file, args, env) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args[0] ?? ""} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

// A child whose stdout lines are collected; `waitFor` polls them for a pattern.
class Child {
  constructor(name, file, args, env) {
    this.name = name;
    this.out = "";
    this.exited = null;
    this.proc = spawn(file, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stdout.setEncoding("utf8");
    this.proc.stdout.on("data", (d) => { this.out += d; });
    this.stderr = "";
    this.proc.stderr.setEncoding("utf8");
    this.proc.stderr.on("data", (d) => { this.stderr += d; });
    this.proc.on("exit", (code, signal) => { this.exited = { code, signal }; });
    this.proc.stdin.on("error", () => {});
  }
  output() { return this.out; }
  send(line) { this.proc.stdin.write(line + "\n"); }
  // Waits for `re` in what the child printed after `from` (default: anything so far);
  // returns the match.
  async waitFor(re, ms = 10000, from = 0) {
    return until(() => {
      if (this.exited && !re.test(this.out.slice(from)))
        throw new Error(`${this.name} exited (${JSON.stringify(this.exited)}) before printing ${re}; ` +
                        `stderr: ${this.stderr.slice(-2000)}`);
      return this.out.slice(from).match(re);
    }, ms, `${this.name} to print ${re}; it printed: ${this.out.slice(-1500)}`);
  }
  async stop(signal = "SIGTERM") {
    if (this.exited) return this.exited;
    this.proc.kill(signal);
    await until(() => this.exited, 10000, `${this.name} to exit`).catch(() => this.proc.kill("SIGKILL"));
    return this.exited;
  }
}

async function startRedis(stack) {
  const redis = new Child("redis-server", bin.redis, stack._redisArgs, stack.env);
  stack.children.push(redis);
  stack._redis = redis;
  await redis.waitFor(/Ready to accept connections/, 10000);
}

async function startService(children, name, file, args, env) {
  const c = new Child(name, file, args, env);
  children.push(c);
  const m = await c.waitFor(/READY (\S+)/, 15000);
  return m[1];
}

// Starts everything. `opts.matchmakerFlags` and `opts.relayFlags` add flags to the matchmaker and
// to every relay (short timings: "--offer-timeout-ms", "--peer-grace-ms", …, so that no test waits
// out the real minutes); `opts.relays` starts more than one relay; `opts.redisFlags` are added to
// redis-server's (after the defaults, so they win: ["--appendonly", "no"] makes a Redis that
// restarts from its last SAVE, for stack.crashRedis()).
export async function startStack(opts = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "warmline-web-"));
  const children = [];
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  // The web app's port comes first: the matchmaker and relays accept browser WebSockets only
  // from its origin, as scripts/up sets them up.
  const webPort = await freePort();
  const env = {
    ...process.env,
    WARMLINE_REDIS_URL: redisUrl,
    WARMLINE_CATALOGUE: CATALOGUE,
    WARMLINE_TICKET_SECRET: randomBytes(32).toString("base64url"),
    WARMLINE_LOG_LEVEL: process.env.WARMLINE_LOG_LEVEL || "warn",
    WARMLINE_ALLOWED_ORIGINS: `http://127.0.0.1:${webPort}`,
  };
  const stack = { dir, children, redisUrl, redisPort, env, _browser: null, _redis: null };
  try {
    await mkdir(path.join(dir, "redis"));
    stack._redisArgs = ["--port", String(redisPort), "--bind", "127.0.0.1", "--dir", path.join(dir, "redis"),
                        "--appendonly", "yes", "--save", "", "--daemonize", "no", ...(opts.redisFlags || [])];
    await startRedis(stack);

    stack.relayUrls = [];
    for (let i = 0; i < (opts.relays || 1); i++)
      stack.relayUrls.push(await startService(children, `relay${i}`, bin.relay,
                                              ["--listen", "127.0.0.1:0", ...(opts.relayFlags || [])], env));
    stack.matchmakerUrl = await startService(children, "matchmaker", bin.matchmaker,
                                             ["--listen", "127.0.0.1:0", "--relay-url", stack.relayUrls[0],
                                              ...(opts.matchmakerFlags || [])], env);
    // the pages of this tree (the binary's built-in default is the tree it was built from)
    const web = await startService(children, "web", bin.web,
                                   ["--listen", `127.0.0.1:${webPort}`, "--root", STATIC, "--matchmaker-url", stack.matchmakerUrl,
                                    "--connect-src", stack.relayUrls.join(","), "--catalogue", CATALOGUE], env);
    stack.webUrl = web;
  } catch (e) {
    await Promise.all(children.map((c) => c.stop("SIGKILL")));
    throw e;
  }

  stack.catalogue = JSON.parse(await readFile(CATALOGUE, "utf8"));

  // `extra`: more warmline-admin flags, e.g. ["--break-after-chats", "1"]
  stack.createListener = async ({ name, topics = ["anxiety"], languages = ["en"], maxChats = 2, handle, extra = [] } = {}) => {
    const args = ["listener", "create", "--name", name || "Sam", "--topics", topics.join(","),
                  "--languages", languages.join(","), "--max-chats", String(maxChats), ...extra];
    if (handle) args.push("--handle", handle);
    const out = await run(bin.admin, args, env);
    const m = out.match(/^listener (\S+)(?: \(handle (\S+)\))? created\.\ntoken: (\S+)/m);
    if (!m) throw new Error("warmline-admin printed something unexpected");
    return { id: m[1], handle: m[2], token: m[3] };
  };
  stack.createSupervisor = async ({ name = "Robin" } = {}) => {
    const out = await run(bin.admin, ["supervisor", "create", "--name", name], env);
    const m = out.match(/^supervisor (\S+) created\.\ntoken: (\S+)/m);
    if (!m) throw new Error("warmline-admin printed something unexpected");
    return { id: m[1], token: m[2] };
  };
  // Stalls Redis (SIGSTOP: connections stay open, nothing is answered) and lets it go on (SIGCONT),
  // as a hung or overloaded database looks to the services.
  stack.stopRedis = () => { stack._redis.proc.kill("SIGSTOP"); };
  stack.continueRedis = () => { stack._redis.proc.kill("SIGCONT"); };
  // Whether the matchmaker and every relay answer /readyz with 200 (Redis reachable, and caught
  // up after an outage).
  stack.servicesReady = async () => {
    const ready = async (wsUrl) => {
      const u = new URL(wsUrl);
      try {
        return (await fetch(`http://${u.host}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200;
      } catch {
        return false;
      }
    };
    const answers = await Promise.all([stack.matchmakerUrl, ...stack.relayUrls].map(ready));
    return answers.every(Boolean);
  };
  // Kills Redis with SIGKILL (nothing flushed), waits until the services have noticed, starts it
  // again on the same port and directory (it comes back with what its AOF or last SAVE had, as
  // after a crash) and waits until the services are ready again.
  stack.crashRedis = async () => {
    await stack._redis.stop("SIGKILL");
    await until(async () => !(await stack.servicesReady()), 10000, "the services to notice that Redis is gone");
    await startRedis(stack);
    await until(() => stack.servicesReady(), 20000, "the services to be ready again after Redis came back");
  };
  stack.admin = (...args) => run(bin.admin, args, env);
  stack.redis = async (...args) => (await run("redis-cli", ["-p", String(redisPort), ...args], env)).trim();

  stack.browser = async () => {
    if (!stack._browser) {
      const { chromium } = await import("playwright-core");
      stack._browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // root in a container has no user namespaces for Chromium's sandbox
        args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
      });
    }
    return stack._browser;
  };
  // A fresh browser context (its own storage: one person) with a page on `pathname`.
  // Every browser speaks en-US unless a spec says otherwise, so that what the pages suggest from
  // the locale (the interface's language, the seeker's region) is the same on every machine.
  stack.open = async (pathname = "/", contextOptions = {}) => {
    const browser = await stack.browser();
    const context = await browser.newContext({ locale: DEFAULT_LOCALE, ...contextOptions });
    const page = await context.newPage();
    page.on("pageerror", (e) => { stack.pageErrors.push(`${pathname}: ${e.message}`); });
    await page.goto(new URL(pathname, stack.webUrl).href);
    return page;
  };
  stack.pageErrors = [];
  stack.screenshot = async (page, name) => {
    await mkdir(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  stack.client = (args) => {
    const c = new Child("warmline-client", bin.client, ["--url", stack.matchmakerUrl, ...args], env);
    children.push(c);
    return c;
  };
  stack.stop = async () => {
    if (stack._redis && !stack._redis.exited) stack.continueRedis();  // a stopped process ignores SIGTERM
    if (stack._browser) await stack._browser.close().catch(() => {});
    for (const c of [...children].reverse()) await c.stop();
    await rm(dir, { recursive: true, force: true });
  };
  return stack;
}

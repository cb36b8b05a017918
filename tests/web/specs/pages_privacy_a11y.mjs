// Every page, before anyone signs in: nothing is loaded from another host, the CSP holds (no
// violations), every control has a name a screen reader can read, axe-core finds nothing against
// WCAG 2.1 A and AA, and the page fits a 360 px phone in light and in dark. The seeker's and the
// listener's page pass axe-core with a chat open too, the conversation a list inside its live log.
// And the matchmaker and the relay refuse WebSockets opened by a page of any other origin.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { T, withStack, waitingSeeker, availableListener, acceptAndChat, say, waitForMessage,
         axeViolations } from "../flows.mjs";

// The status of a WebSocket upgrade of `url` sent with this Origin header.
function upgradeStatus(url, origin) {
  const u = new URL(url.replace(/^ws/, "http"));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, timeout: 5000,
      headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", Origin: origin },
    });
    req.on("upgrade", (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on("response", (res) => { res.resume(); resolve(res.statusCode); });
    req.on("timeout", () => req.destroy(new Error("no answer")));
    req.on("error", reject);
    req.end();
  });
}

const PAGES = [
  { path: "/", name: "seeker" },
  { path: "/listener.html", name: "listener" },
  { path: "/supervisor.html", name: "dashboard" },
];

describe("every page", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Noor", topics: ["general"], languages: ["en"] }),
  }));

  it("the matchmaker and the relay take browser WebSockets only from the web app's origin", { timeout: 20000 },
     async () => {
    const { stack } = suite;
    const own = new URL(stack.webUrl).origin;
    assert.equal(await upgradeStatus(stack.matchmakerUrl, own), 101);
    assert.equal(await upgradeStatus(stack.matchmakerUrl, "http://evil.example"), 403);
    // the relay checks the Origin first, so a forged page learns nothing; a ticket never rides in
    // the URL (the relay refuses one there: URLs are logged), it comes in hello
    assert.equal(await upgradeStatus(stack.relayUrls[0], "http://evil.example"), 403);
    assert.equal(await upgradeStatus(stack.relayUrls[0], own), 101);
    assert.equal(await upgradeStatus(stack.relayUrls[0] + "?ticket=v1.x", own), 400);
  });

  for (const { path, name } of PAGES) {
    it(`${path} loads only from its own origin, under a CSP it does not violate`, { timeout: 30000 }, async () => {
      const { stack } = suite;
      const browser = await stack.browser();
      const context = await browser.newContext();
      const page = await context.newPage();
      const requests = [];
      const violations = [];
      page.on("request", (r) => requests.push(r.url()));
      page.on("console", (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const res = await page.goto(new URL(path, stack.webUrl).href, { waitUntil: "networkidle" });
      assert.equal(res.status(), 200);
      const csp = res.headers()["content-security-policy"];
      assert.match(csp, /default-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      const own = new URL(stack.webUrl).origin;
      const foreign = requests.filter((u) => !u.startsWith(own + "/") && !u.startsWith("data:"));
      assert.deepEqual(foreign, [], "requests to another host");
      assert.deepEqual(violations, [], "CSP violations");
      assert.deepEqual(errors, [], "uncaught page errors");
      assert.ok(requests.some((u) => u.endsWith("/config.json")), "the page reads /config.json");
      await context.close();
    });

    it(`${path} names every control, has a language and a title, and passes axe-core`, { timeout: 30000 }, async () => {
      const { stack } = suite;
      const page = await stack.open(path);
      await page.waitForLoadState("networkidle");
      const report = await page.evaluate(() => {
        const unnamed = [];
        for (const el of document.querySelectorAll("input, select, textarea, button, [role=switch], [role=tab]")) {
          if (el.type === "hidden" || el.closest("[hidden]")) continue;
          const labelled = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label") ||
                           el.getAttribute("aria-labelledby") || (el.textContent || "").trim() || el.title;
          if (!labelled) unnamed.push(el.outerHTML.slice(0, 120));
        }
        return { unnamed, lang: document.documentElement.lang, title: document.title,
                 viewport: !!document.querySelector('meta[name="viewport"]'),
                 main: !!document.querySelector("main") };
      });
      assert.deepEqual(report.unnamed, [], "controls without an accessible name");
      assert.ok(report.lang, "<html lang> is set");
      assert.ok(report.title.includes("Warmline"), "the title names Warmline");
      assert.ok(report.viewport, "a viewport meta for phones");
      assert.ok(report.main, "a <main> landmark");
      assert.deepEqual(await axeViolations(page), [], "what axe-core finds");
      await page.context().close();
    });

    it(`${path} fits a 360 px phone, in light and in dark`, { timeout: 30000 }, async () => {
      const { stack } = suite;
      const backgrounds = {};
      for (const colorScheme of ["light", "dark"]) {
        const page = await stack.open(path, { viewport: { width: 360, height: 740 }, colorScheme });
        await page.waitForLoadState("networkidle");
        const m = await page.evaluate(() => ({
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          background: getComputedStyle(document.body).backgroundColor,
          color: getComputedStyle(document.body).color,
        }));
        assert.ok(m.overflow <= 0, `${colorScheme}: the page is ${m.overflow}px wider than the phone`);
        assert.notEqual(m.background, m.color);
        backgrounds[colorScheme] = m.background;
        await stack.screenshot(page, `${name}-phone-${colorScheme}`);
        await page.context().close();
      }
      assert.notEqual(backgrounds.light, backgrounds.dark, "dark mode changes the page");
    });
  }

  it("the seeker's and the listener's page pass axe-core with a chat open", { timeout: 60000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await waitingSeeker(stack, { topic: "general", language: "en" });
    const desk = await availableListener(stack, listener, { name: "Noor" });
    await acceptAndChat(seeker, desk);
    await say(seeker, "Is anyone there?");
    await waitForMessage(desk, "Is anyone there?", "them");
    await say(desk, "Yes, I'm here. Take your time.");
    await waitForMessage(seeker, "Yes, I'm here. Take your time.", "them");
    for (const [who, page] of [["seeker", seeker], ["listener", desk]]) {
      // the messages stay a list (role=log on the list itself would hide that), inside the live log
      const log = page.getByRole("log", { name: "Conversation" }).filter({ visible: true });
      assert.equal(await log.getByRole("list").getByRole("listitem").count(), 2, `${who}: two messages in a list`);
      assert.equal(await log.getAttribute("aria-live"), "polite", `${who}: the log is a polite live region`);
      assert.deepEqual(await axeViolations(page), [], `${who}: what axe-core finds with a chat open`);
    }
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
  });
});

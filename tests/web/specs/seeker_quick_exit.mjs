// For someone who must not be seen on this site: "Leave this site quickly" (and Esc twice) on every
// seeker screen replaces the page with a neutral one, so Back does not return, and clears what
// the tab kept (the resume token, the chat's state, its private key in IndexedDB); and "Need
// urgent help?" on every screen gives the chosen language's crisis lines.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, blankPage, visit, askForChat, waitInLine, availableListener, acceptAndChat,
         axeViolations, crisisLines } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

const NEUTRAL = "https://www.google.com/";

// The neutral site, played by the test (nothing leaves the machine).
async function neutralSite(page) {
  await page.context().route(`${NEUTRAL}**`, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<title>Search</title><p>neutral</p>" }));
}

const keysKept = (page) => page.evaluate(async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open("warmline", 1); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const n = await new Promise((ok) => {
    const r = db.transaction("chat-keys").objectStore("chat-keys").count();
    r.onsuccess = () => ok(r.result);
  });
  db.close();
  return n;
});

describe("the seeker's quick exit and urgent help", () => {
  // the listener hears that the person is gone within a second and a half (the relay's presence)
  const suite = withStack({ relayFlags: ["--peer-away-ms=1500", "--peer-grace-ms=600000", "--presence-sweep-ms=200"] },
                          async (stack) => ({
    listener: await stack.createListener({ name: "Ines", topics: ["grief"], languages: ["en", "es"], maxChats: 1 }),
  }));

  it("offers the crisis lines on every screen, in the chosen language", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await blankPage(stack);
    await visit(stack, seeker);
    const help = seeker.locator("#urgent-help");
    await seeker.getByText("Need urgent help?", { exact: true }).click();
    const es = crisisLines(stack, "es");
    const en = crisisLines(stack, "en");
    await seeker.getByLabel("Language").selectOption("es");
    await help.getByText(es[0].name, { exact: true }).waitFor({ timeout: 2000 });
    await seeker.getByLabel(TABLES.es["seeker.language"]).selectOption("en");  // the page speaks Spanish now
    await help.getByText(en[0].name, { exact: true }).waitFor({ timeout: 2000 });
    assert.deepEqual(await axeViolations(seeker), []);
    await askForChat(seeker, { topic: "grief", language: "en" });
    await waitInLine(seeker, 1);
    assert.ok(await seeker.getByRole("button", { name: "Leave this site quickly" }).isVisible());
    assert.ok(await help.getByText(en[0].name, { exact: true }).isVisible(), "still there while waiting");
    // out of the line again, so that the next test's seeker is the one offered
    await seeker.getByRole("button", { name: "Stop waiting" }).click();
    await seeker.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });
  });

  it("leaves mid-chat for a neutral page that Back does not leave, and keeps nothing", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    await neutralSite(seeker);
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "grief", language: "en" });
    const desk = await availableListener(stack, listener);
    await acceptAndChat(seeker, desk);
    assert.ok((await seeker.evaluate(() => sessionStorage.length)) > 0);
    assert.equal(await keysKept(seeker), 1, "the chat's key is kept while it lasts");

    await seeker.getByRole("button", { name: "Leave this site quickly" }).click();
    await seeker.waitForURL(NEUTRAL, { timeout: T });
    // Back goes to where the tab was before Warmline, not to Warmline
    await seeker.goBack().catch(() => {});
    assert.ok(!seeker.url().startsWith(stack.webUrl), `Back led to ${seeker.url()}`);
    // the tab kept nothing: the app opens fresh, and no key is left
    await visit(stack, seeker);
    await seeker.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });
    assert.equal(await seeker.evaluate(() => sessionStorage.length), 0);
    assert.equal(await keysKept(seeker), 0, "the chat's key is gone");
    // the listener is told that the person's connection dropped (the relay's presence)
    await desk.getByRole("tabpanel").getByText(/connection dropped/).first().waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
  });

  it("leaves on Esc pressed twice, not once", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await blankPage(stack);
    await neutralSite(seeker);
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "grief", language: "es" });
    await waitInLine(seeker);
    await seeker.keyboard.press("Escape");
    // one Esc (which also closes dialogs) does not leave: no navigation within half a second
    await assert.rejects(seeker.waitForURL(NEUTRAL, { timeout: 500 }));
    assert.ok(seeker.url().startsWith(stack.webUrl), "one Esc does nothing");
    await seeker.keyboard.press("Escape");
    await seeker.keyboard.press("Escape");
    await seeker.waitForURL(NEUTRAL, { timeout: T });
  });
});

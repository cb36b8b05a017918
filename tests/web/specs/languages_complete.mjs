// Every page in every language of the catalogue, with nothing left in English: the tables have the
// same keys and parameters, and in a browser speaking Spanish, German or Brazilian Portuguese the
// seeker's start, waiting, chat and after-chat screens, the listener's desk (signed in, with an
// offer and a crisis chat) and the signed-in dashboard show no string of the English table (but
// those the same by intent), with <html lang> set. The check itself is shown to catch English.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack } from "../flows.mjs";
import { TABLES, OTHERS, en, tableProblems, untranslated, textsOf } from "../languages.mjs";

const LOCALE = { es: "es-ES", de: "de-DE", "pt-BR": "pt-BR" };

// Fails with every English text found on `page`, which should speak `lang`.
async function expectNoEnglish(page, lang, what) {
  assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${what}: <html lang>`);
  const items = await textsOf(page);
  assert.ok(items.length > 10, `${what}: the page has its texts`);
  assert.deepEqual(untranslated(items, lang), [], `${what}: English left in ${lang}`);
}

const visibleBox = (page) => page.locator("textarea:visible").first();

describe("the pages in every language", () => {
  it("have tables with the same keys and parameters, and English only where meant", () => {
    assert.deepEqual(tableProblems(), []);
  });

  it("would notice English on a page in another language", () => {
    const sample = [
      { where: "button", text: en["seeker.talk"] },                                       // a whole string
      { where: "p", text: "12:30 · Sent" },                                               // a part
      { where: "p", text: `${TABLES.es["seeker.chooseBoth"]} ${en["seeker.chooseBoth"]}` },  // a sentence in a text
      { where: "p", text: "You are number 3 in line." },                                  // a string with a parameter
      { where: "p", text: TABLES.es["seeker.talk"] },                                     // not English
    ];
    assert.deepEqual(untranslated(sample, "es").map((s) => s.split(":")[0]), ["button", "p", "p", "p"]);
  });

  const suite = withStack({}, async (stack) => {
    const listeners = {};
    for (const lang of OTHERS) {
      listeners[lang] = await stack.createListener({ name: `Alex ${lang}`, topics: ["general"], languages: [lang] });
    }
    return { listeners, supervisor: await stack.createSupervisor({ name: "Robin Vale" }) };
  });

  for (const lang of OTHERS) {
    it(`speak ${lang} on every screen`, { timeout: 120000 }, async () => {
      const { stack, listeners, supervisor } = suite;
      const tr = TABLES[lang];
      const open = (path) => stack.open(path, { locale: LOCALE[lang] });

      // the desk, signed in
      const desk = await open("/listener.html");
      await desk.locator("#token").fill(listeners[lang].token);
      await desk.locator("#signin-button").click();
      await desk.getByRole("heading", { name: `Alex ${lang}` }).waitFor({ timeout: T });
      await expectNoEnglish(desk, lang, "the desk");
      await desk.getByRole("switch", { name: tr["listener.available"] }).click();
      await until(async () => (await desk.locator("#available").getAttribute("aria-checked")) === "true", T, "Available");

      // the seeker's start screen, with the crisis box open
      const seeker = await open("/");
      await seeker.getByRole("button", { name: tr["seeker.talk"] }).waitFor({ timeout: T });
      assert.equal(await seeker.locator("#language").inputValue(), lang, "the browser's language is the chat's");
      await seeker.locator("#topic").selectOption("general");
      await seeker.getByLabel(tr["seeker.crisis"]).check();
      await seeker.locator("#urgent-help summary").click();
      await expectNoEnglish(seeker, lang, "the start screen");

      // waiting, with an offer on the desk
      await seeker.getByRole("button", { name: tr["seeker.talk"] }).click();
      await seeker.locator('#queue-position[data-i18n="seeker.queue.position"]').waitFor({ timeout: T });
      await expectNoEnglish(seeker, lang, "the waiting screen");
      const offer = desk.getByRole("region", { name: tr["listener.offer.title"] });
      await offer.waitFor({ timeout: T });
      await expectNoEnglish(desk, lang, "the desk with an offer");

      // the chat on both sides: a line each way, read, the safety code shown
      await offer.getByRole("button", { name: tr["listener.offer.accept"] }).click();
      await visibleBox(seeker).waitFor({ timeout: T });
      await visibleBox(desk).waitFor({ timeout: T });
      await visibleBox(seeker).fill("hola, hallo, olá");
      await visibleBox(seeker).press("Enter");
      await desk.locator('.msg[data-from="them"]').waitFor({ timeout: T });
      await visibleBox(desk).fill("¡aquí estoy!");
      await visibleBox(desk).press("Enter");
      await seeker.locator('.msg[data-from="them"]').waitFor({ timeout: T });
      await seeker.getByRole("button", { name: tr["chat.code.show"] }).click();
      await seeker.getByRole("button", { name: tr["chat.code.hide"] }).waitFor({ timeout: T });
      await until(async () => /·/.test(await desk.locator('.msg[data-from="me"] .msg-meta').innerText()), T, "the desk's line to have a state");
      await expectNoEnglish(seeker, lang, "the seeker's chat");
      await expectNoEnglish(desk, lang, "the desk's crisis chat");

      // the dashboard, signed in, with the chat in its table and charts
      const dash = await open("/supervisor.html");
      await dash.locator("#token").fill(supervisor.token);
      await dash.locator("#signin-button").click();
      await dash.locator("#queues-body tr[data-key]").first().waitFor({ timeout: T });
      await dash.locator("#chart-chats svg[aria-label]").waitFor({ timeout: T });
      await expectNoEnglish(dash, lang, "the dashboard");

      // the end: the seeker's after-chat screen with the report open, and the desk's ended tab
      await seeker.getByRole("button", { name: tr["chat.end"] }).click();
      await seeker.getByRole("button", { name: tr["chat.end.yes"] }).click();
      await seeker.getByRole("heading", { name: tr["seeker.after.title"] }).waitFor({ timeout: T });
      await seeker.getByRole("button", { name: tr["seeker.report"] }).click();
      await expectNoEnglish(seeker, lang, "the after-chat screen");
      await desk.getByRole("button", { name: tr["listener.chat.close"] }).waitFor({ timeout: T });
      await expectNoEnglish(desk, lang, "the desk with an ended chat");

      for (const page of [desk, seeker, dash]) await page.context().close();
      assert.deepEqual(stack.pageErrors, []);
    });
  }
});

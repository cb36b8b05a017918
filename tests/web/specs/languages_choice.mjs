// How a page picks its language: a browser set to German gets German on first load (seeker page and
// listener desk); on the seeker's page, picking Spanish in the language selector turns the whole
// interface Spanish at once, it stays Spanish while waiting and after a reload, and picking English
// again after asking turns it back at once; the desk's own picker switches it too.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

const { en, es, de } = TABLES;
const htmlLang = (page) => page.evaluate(() => document.documentElement.lang);
const heading = (page, text) => page.getByRole("heading", { name: text, exact: true });

describe("choosing the pages' language", () => {
  const suite = withStack();

  it("follows a German browser on first load", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await stack.open("/", { locale: "de-DE" });
    await heading(seeker, de["seeker.start.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(seeker), "de");
    assert.equal(await seeker.locator("#language").inputValue(), "de", "the chat's language follows the browser too");
    await seeker.getByRole("button", { name: de["seeker.talk"] }).waitFor({ timeout: T });
    assert.equal(await seeker.locator("#topic option[value=general]").innerText(), de["topic.general"]);

    const desk = await stack.open("/listener.html", { locale: "de-DE" });
    await heading(desk, de["listener.signin.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(desk), "de");
    // the desk's own picker: English at once
    await desk.getByRole("combobox", { name: de["lang.picker"] }).selectOption("en");
    await heading(desk, en["listener.signin.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(desk), "en");
    await desk.getByLabel(en["listener.token"]).waitFor({ timeout: T });

    const dash = await stack.open("/supervisor.html", { locale: "de-DE" });
    await heading(dash, de["dash.signin.title"]).waitFor({ timeout: T });
    assert.equal(await dash.title(), de["dash.title"]);
    assert.deepEqual(stack.pageErrors, []);
  });

  it("follows the seeker's language selector at once, before and after asking", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await stack.open("/");
    await heading(seeker, en["seeker.start.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(seeker), "en");

    await seeker.getByLabel(en["seeker.language"]).selectOption("es");
    await heading(seeker, es["seeker.start.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(seeker), "es");
    await seeker.getByRole("button", { name: es["seeker.quickExit"] }).waitFor({ timeout: T });
    assert.equal(await seeker.locator("#topic option[value=general]").innerText(), es["topic.general"]);
    await seeker.getByRole("region", { name: es["seeker.about.title"] }).waitFor({ timeout: T });

    // asking: the waiting screen is Spanish, and stays so after a reload
    await seeker.getByLabel(es["seeker.topic"]).selectOption("general");
    await seeker.getByRole("button", { name: es["seeker.talk"] }).click();
    await heading(seeker, es["seeker.waiting.title"]).waitFor({ timeout: T });
    await seeker.getByRole("button", { name: es["seeker.stopWaiting"] }).waitFor({ timeout: T });
    await seeker.reload();
    await heading(seeker, es["seeker.waiting.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(seeker), "es");

    // back at the start after asking, English again at once, and still after a reload
    await seeker.getByRole("button", { name: es["seeker.stopWaiting"] }).click();
    await heading(seeker, es["seeker.start.title"]).waitFor({ timeout: T });
    await seeker.getByLabel(es["seeker.language"]).selectOption("en");
    await heading(seeker, en["seeker.start.title"]).waitFor({ timeout: T });
    assert.equal(await htmlLang(seeker), "en");
    await until(async () => (await seeker.locator("#topic option[value=general]").innerText()) === en["topic.general"],
                T, "the topics in English again");
    await seeker.reload();
    await heading(seeker, en["seeker.start.title"]).waitFor({ timeout: T });
    await until(async () => (await seeker.locator("#language").inputValue()) === "en", T, "English chosen after the reload");
    assert.equal(await htmlLang(seeker), "en");
    // the choice is this tab's only
    assert.equal(await seeker.evaluate(() => localStorage.length), 0);
    assert.deepEqual(stack.pageErrors, []);
  });
});

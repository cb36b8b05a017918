// The seeker's whole path with the keyboard alone: Tab to move, arrow keys inside a select, Space
// and Enter to act. Choosing a topic and language, asking, waiting (Stop waiting is reachable),
// typing and sending with Enter once matched, the safety code, ending with a confirmation and
// rating. Focus is always somewhere sensible and visibly outlined. The seeker picks Spanish, so the
// page speaks Spanish from then on.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, waitInLine, availableListener, acceptAndChat, say, waitForMessage } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

const es = TABLES.es;  // once Spanish is chosen, the page speaks it

// What has focus: its accessible-ish name (label, aria-label or text) and whether it shows an outline.
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { name: "", tag: "body", outlined: false };
    const label = (el.labels && el.labels[0] && el.labels[0].textContent) || el.getAttribute("aria-label") ||
                  (el.getAttribute("aria-labelledby") && document.getElementById(el.getAttribute("aria-labelledby"))?.textContent) ||
                  el.textContent || "";
    const style = getComputedStyle(el);
    return { name: label.trim(), tag: el.tagName.toLowerCase(), role: el.getAttribute("role") || "",
             outlined: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 };
  });
}

// Presses Tab until the focused element's name is `name` (at most `max` presses).
async function tabTo(page, name, max = 8) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    const f = await focused(page);
    seen.push(f.name);
    if (f.name === name) return f;
  }
  throw new Error(`Tab never reached "${name}"; it went through ${JSON.stringify(seen)}`);
}

describe("the seeker with only a keyboard", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Lu", topics: ["grief"], languages: ["es"] }),
  }));

  it("chooses, asks, chats, ends and rates without a mouse", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const page = await stack.open("/");
    await page.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });

    // the first Tab shows the skip link, then the quick exit, then the form in reading order
    await page.keyboard.press("Tab");
    assert.equal((await focused(page)).name, "Skip to the main content");
    // the way out and the crisis lines come before anything else
    let f = await tabTo(page, "Need urgent help?", 1);
    assert.ok(f.outlined, "focus is visible on the urgent help");
    f = await tabTo(page, "Leave this site quickly", 1);
    assert.ok(f.outlined, "focus is visible on the quick exit");
    f = await tabTo(page, "Topic", 2);
    assert.ok(f.outlined, "focus is visible on the topic");
    const topics = stack.catalogue.topics.map((t) => t.id);
    for (let i = 0; i < topics.indexOf("grief"); i++) await page.keyboard.press("ArrowDown");
    assert.equal(await page.getByLabel("Topic").inputValue(), "grief");
    f = await tabTo(page, "Language", 1);
    const langs = stack.catalogue.languages.map((l) => l.tag);
    const at = langs.indexOf(await page.getByLabel("Language").inputValue());
    const want = langs.indexOf("es");
    for (let i = at; i < want; i++) await page.keyboard.press("ArrowDown");
    for (let i = at; i > want; i--) await page.keyboard.press("ArrowUp");
    assert.equal(await page.getByLabel(es["seeker.language"]).inputValue(), "es");
    // where they are (for the crisis lines), then the crisis box
    f = await tabTo(page, es["seeker.region"], 1);
    assert.ok(f.outlined, "focus is visible on the region");
    f = await tabTo(page, es["seeker.crisis"], 1);
    assert.ok(f.outlined, "focus is visible on the checkbox");
    f = await tabTo(page, es["seeker.talk"], 2);
    assert.ok(f.outlined, "focus is visible on the button");
    await page.keyboard.press("Enter");

    // waiting: focus lands on the waiting screen and Stop waiting is reachable
    await waitInLine(page, 1);
    assert.equal((await focused(page)).name, es["seeker.waiting.title"], "focus moves to the waiting screen");
    f = await tabTo(page, es["seeker.stopWaiting"], 3);
    assert.ok(f.outlined);

    // a listener accepts
    const desk = await availableListener(stack, listener);
    await acceptAndChat(page, desk);

    // matched: focus is in the message box; type and send with Enter
    await until(async () => (await focused(page)).name === es["chat.message"], T, "focus in the message box");
    await page.keyboard.type("Hola. Perdí a mi padre hace un mes.");
    await page.keyboard.press("Enter");
    await waitForMessage(desk, "Hola. Perdí a mi padre hace un mes.", "them");
    assert.equal(await page.getByRole("textbox", { name: es["chat.message"] }).inputValue(), "", "the box is cleared");
    // Shift+Enter makes a new line instead of sending
    await page.keyboard.type("una");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("dos");
    assert.equal(await page.getByRole("textbox", { name: es["chat.message"] }).inputValue(), "una\ndos");
    await page.keyboard.press("Enter");
    await desk.locator('.msg[data-from="them"] .msg-text').filter({ hasText: "dos" }).waitFor({ timeout: T });
    assert.equal(await desk.locator('.msg[data-from="them"] .msg-text').last().textContent(), "una\ndos");

    // the reply arrives in the log, focus stays put
    await say(desk, "Lo siento mucho. Estoy aquí.");
    await waitForMessage(page, "Lo siento mucho. Estoy aquí.", "them");
    assert.equal((await focused(page)).name, es["chat.message"]);

    // the safety code with Space
    await tabTo(page, es["chat.code.show"], 3);
    await page.keyboard.press("Space");
    await until(async () => /^\d{5}( \d{5}){5}$/.test((await page.getByTestId("safety-code").innerText()).trim()), T, "the safety code");

    // end with Enter, confirm with Enter
    await tabTo(page, es["chat.end"], 3);
    await page.keyboard.press("Enter");
    assert.equal((await focused(page)).name, es["chat.end.yes"], "the confirmation takes focus");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: es["seeker.after.title"] }).waitFor({ timeout: T });
    assert.equal((await focused(page)).name, es["seeker.after.title"], "focus moves to the ended screen");

    // rate with Space, send with Enter
    f = await tabTo(page, es["seeker.stars.1"], 2);
    assert.equal(f.role || "radio", "radio");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    assert.equal((await focused(page)).name, es["seeker.stars.4"]);
    await page.keyboard.press("Space");
    assert.equal(await page.getByRole("radio", { name: es["seeker.stars.4"] }).isChecked(), true);
    await tabTo(page, es["seeker.sendFeedback"], 4);
    await page.keyboard.press("Enter");
    await page.getByText(es["seeker.feedback.thanks"]).waitFor({ timeout: T });
    // the button is disabled now: the thanks takes its focus, so it is read out and Tab goes on from there
    assert.equal((await focused(page)).name, es["seeker.feedback.thanks"], "focus moves to the thanks");
    await tabTo(page, es["seeker.report"], 1);
    assert.deepEqual(stack.pageErrors, []);
  });
});

// A seeker and a listener, each in their own browser context, are matched through the real
// matchmaker and chat both ways through the real relay, end to end encrypted: every message
// appears exactly once, in order, on the right side, as text (never as markup); typing and read
// receipts pass; both safety codes are equal; ending, rating and blocking work.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;

// [data-from, text] of every message in the visible conversation log of `page`
async function transcript(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible .msg').evaluateAll((els) =>
    els.map((el) => [el.dataset.from, el.querySelector(".msg-text").textContent]));
}

async function expectTranscript(page, expected, what) {
  let last;
  await until(async () => {
    last = await transcript(page);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, T, `${what}: ${JSON.stringify(expected)}`).catch((e) => {
    assert.deepEqual(last, expected, `${what} (${e.message})`);
  });
}

describe("a seeker and a listener in two browsers", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Sam Rivera", topics: ["anxiety", "general"], languages: ["en"], maxChats: 2 });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("are matched, chat both ways end to end encrypted, compare safety codes, end, rate and block", { timeout: 120000 }, async () => {
    const seeker = await stack.open("/");
    await seeker.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });
    // the topics and languages come from the catalogue
    const topics = await seeker.getByLabel("Topic").locator("option").allTextContents();
    assert.deepEqual(topics, stack.catalogue.topics.map((t) => t.name));
    const languages = await seeker.getByLabel("Language").locator("option").allTextContents();
    assert.deepEqual(languages, stack.catalogue.languages.map((l) => l.name));
    await seeker.getByLabel("Topic").selectOption("anxiety");
    await seeker.getByLabel("Language").selectOption("en");
    await stack.screenshot(seeker, "seeker-start");

    // the listener signs in
    const desk = await stack.open("/listener.html");
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("heading", { name: "Sam Rivera" }).waitFor({ timeout: T });
    await desk.getByText("Chats today: 0").waitFor({ timeout: T });
    const available = desk.getByRole("switch", { name: "Available" });
    assert.equal(await available.getAttribute("aria-checked"), "false", "a listener signs in away");

    // the seeker asks and waits: first in line
    await seeker.getByRole("button", { name: "Talk to someone" }).click();
    const status = seeker.getByRole("status").filter({ hasText: "in line" });
    await status.filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });
    assert.equal(await stack.redis("ZCARD", "wl:q:anxiety:en"), "1", "the seeker is queued");
    await seeker.getByRole("button", { name: "Stop waiting" }).waitFor({ timeout: T });
    await stack.screenshot(seeker, "seeker-waiting");

    // the listener goes available and gets the offer, with a live countdown and a title badge
    await available.click();
    await until(async () => (await available.getAttribute("aria-checked")) === "true", T, "Available to switch on");
    const offer = desk.getByRole("region", { name: "New chat request" });
    await offer.waitFor({ timeout: T });
    assert.match(await offer.innerText(), /Anxiety and stress/);
    assert.match(await offer.innerText(), /English/);
    const countdown = offer.locator(".countdown");
    const first = Number((await countdown.innerText()).match(/(\d+) seconds? left/)[1]);
    assert.ok(first > 20 && first <= 30, `the countdown starts near 30 s (${first})`);
    await until(async () => {
      const m = (await countdown.innerText()).match(/(\d+) seconds? left/);
      return m && Number(m[1]) < first;
    }, 5000, "the countdown to tick");
    assert.equal(await desk.title(), "(1) Warmline");
    await stack.screenshot(desk, "listener-offer");
    await offer.getByRole("button", { name: "Accept" }).click();

    // both are in the chat
    const tab = desk.getByRole("tablist", { name: "Chats" }).getByRole("tab");
    await tab.first().waitFor({ timeout: T });
    assert.equal(await tab.count(), 1);
    assert.equal(await tab.first().getAttribute("aria-selected"), "true");
    await desk.getByText("Chats today: 1").waitFor({ timeout: T });
    assert.equal(await desk.title(), "Warmline", "the badge goes once the offer is answered");
    const seekerBox = seeker.getByRole("textbox", { name: "Message" });
    await seekerBox.waitFor({ timeout: T });
    const deskBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });

    const s1 = "I can't sleep again and I don't know why.";
    await seekerBox.fill(s1);
    await seekerBox.press("Enter");
    await expectTranscript(desk, [["them", s1]], "the listener gets the seeker's first message");

    const l1 = "I'm here. What's keeping you up tonight?";
    await deskBox.fill(l1);
    await desk.getByRole("tabpanel").getByRole("button", { name: "Send" }).click();
    await expectTranscript(seeker, [["me", s1], ["them", l1]], "the seeker gets the reply");

    // text with markup, quotes and non-ASCII shows as text
    const s2 = 'Grüße 🙂 <b>not bold</b> & "quotes"\nand a second line';
    await seekerBox.fill(s2);
    await seeker.getByRole("button", { name: "Send" }).click();
    const l2 = "Thank you for telling me.";
    await expectTranscript(desk, [["them", s1], ["me", l1], ["them", s2]], "the listener gets the second message");
    assert.equal(await desk.locator(".log b").count(), 0, "a message is never parsed as HTML");

    // typing passes through the relay
    await deskBox.pressSequentially("Thank");
    await seeker.getByRole("status").filter({ hasText: "is typing" }).waitFor({ timeout: T });
    await deskBox.fill(l2);
    await deskBox.press("Enter");
    await expectTranscript(seeker, [["me", s1], ["them", l1], ["me", s2], ["them", l2]], "the seeker's view");
    await expectTranscript(desk, [["them", s1], ["me", l1], ["them", s2], ["me", l2]], "the listener's view");

    // the listener has the chat open, so the seeker's messages are marked read
    await until(async () => {
      const metas = await seeker.locator('.msg[data-from="me"] .msg-meta').allTextContents();
      return metas.length === 2 && metas.every((m) => /Read/.test(m));
    }, T, "the seeker's messages to be marked read");

    // safety codes: six groups of five digits, equal on both screens
    await seeker.getByRole("button", { name: "Show safety code" }).click();
    await desk.getByRole("tabpanel").getByRole("button", { name: "Show safety code" }).click();
    const seekerCode = (await seeker.getByTestId("safety-code").innerText()).trim();
    const deskCode = (await desk.getByRole("tabpanel").getByTestId("safety-code").innerText()).trim();
    assert.match(seekerCode, /^\d{5}( \d{5}){5}$/);
    assert.equal(seekerCode, deskCode, "both sides show the same safety code");
    await stack.screenshot(seeker, "seeker-chat");
    await stack.screenshot(desk, "listener-chat");

    // what the tab keeps: sessionStorage only, never localStorage
    for (const page of [seeker, desk]) {
      const store = await page.evaluate(() => ({ local: localStorage.length, session: Object.keys(sessionStorage) }));
      assert.equal(store.local, 0, "nothing in localStorage");
      assert.ok(store.session.some((k) => k.startsWith("wl.chat.")), "the chat is kept in sessionStorage");
    }
    const sessionId = await seeker.evaluate(() => JSON.parse(sessionStorage.getItem("wl.seeker")).sessionId);
    assert.ok(sessionId);

    // the seeker ends the chat (with a confirmation)
    await seeker.getByRole("button", { name: "End chat" }).click();
    await seeker.getByRole("button", { name: "Yes, end the chat" }).click();
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    await seeker.locator("#after-reason").filter({ hasText: "You ended the chat." }).waitFor({ timeout: T });
    await desk.getByRole("tabpanel").getByText("The other person ended the chat.").waitFor({ timeout: T });
    assert.equal(await desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" }).isDisabled(), true);
    const left = await seeker.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("wl.chat.")));
    assert.deepEqual(left, [], "the chat's keys and messages are wiped when it ends");

    // rate and block
    await seeker.getByRole("radiogroup", { name: "How was this chat?" }).getByRole("radio", { name: "5 stars" }).check();
    await seeker.getByRole("checkbox", { name: "Don't match me with this listener again" }).check();
    await seeker.getByRole("button", { name: "Send feedback" }).click();
    await seeker.getByText(/Thank you for your feedback/).waitFor({ timeout: T });
    assert.equal(await stack.redis("HGET", `wl:rating:${sessionId}`, "stars"), "5");
    const blockedKeys = (await stack.redis("KEYS", "wl:seeker:*:blocked")).split("\n").filter(Boolean);
    assert.equal(blockedKeys.length, 1, "one seeker has a block list");
    assert.equal(await stack.redis("SMEMBERS", blockedKeys[0]), listener.id, "the block names this listener");
    await stack.screenshot(seeker, "seeker-after-chat");
    assert.deepEqual(stack.pageErrors, []);
  });
});

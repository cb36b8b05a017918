// A seeker and a listener, each in their own browser context, are matched through the real
// matchmaker and chat both ways through the real relay, end to end encrypted: every message
// appears exactly once, in order, on the right side, as text (never as markup); typing and read
// receipts pass; both safety codes are equal; ending, rating and blocking work.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, signInListener, availableSwitch, goAvailable, askForChat, waitInLine, offerOn, acceptAndChat,
         say, expectTranscript, safetyCode, endChat } from "../flows.mjs";

describe("a seeker and a listener in two browsers", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Sam Rivera", topics: ["anxiety", "general"], languages: ["en"], maxChats: 2 }),
  }));

  it("are matched, chat both ways end to end encrypted, compare safety codes, end, rate and block", { timeout: 120000 }, async () => {
    const { stack, listener } = suite;
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
    await signInListener(desk, listener.token, "Sam Rivera");
    await desk.getByText("Chats today: 0").waitFor({ timeout: T });
    assert.equal(await availableSwitch(desk).getAttribute("aria-checked"), "false", "a listener signs in away");

    // the seeker asks and waits: first in line
    await askForChat(seeker);
    await waitInLine(seeker, 1);
    assert.equal(await stack.redis("ZCARD", "wl:q:anxiety:en"), "1", "the seeker is queued");
    await seeker.getByRole("button", { name: "Stop waiting" }).waitFor({ timeout: T });
    await stack.screenshot(seeker, "seeker-waiting");

    // the listener goes available and gets the offer, with a live countdown and a title badge
    await goAvailable(desk);
    const offer = offerOn(desk);
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

    // both are in the chat
    await acceptAndChat(seeker, desk);
    const tab = desk.getByRole("tablist", { name: "Chats" }).getByRole("tab");
    await tab.first().waitFor({ timeout: T });
    assert.equal(await tab.count(), 1);
    assert.equal(await tab.first().getAttribute("aria-selected"), "true");
    await desk.getByText("Chats today: 1").waitFor({ timeout: T });
    assert.equal(await desk.title(), "Warmline", "the badge goes once the offer is answered");
    const deskBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });

    const s1 = "I can't sleep again and I don't know why.";
    await say(seeker, s1);
    await expectTranscript(desk, [["them", s1]], "the listener gets the seeker's first message");

    // the Send buttons send too
    const l1 = "I'm here. What's keeping you up tonight?";
    await deskBox.fill(l1);
    await desk.getByRole("tabpanel").getByRole("button", { name: "Send" }).click();
    await expectTranscript(seeker, [["me", s1], ["them", l1]], "the seeker gets the reply");

    // text with markup, quotes and non-ASCII shows as text
    const s2 = 'Grüße 🙂 <b>not bold</b> & "quotes"\nand a second line';
    await seeker.getByRole("textbox", { name: "Message" }).fill(s2);
    await seeker.getByRole("button", { name: "Send" }).click();
    const l2 = "Thank you for telling me.";
    await expectTranscript(desk, [["them", s1], ["me", l1], ["them", s2]], "the listener gets the second message");
    assert.equal(await desk.locator(".log b").count(), 0, "a message is never parsed as HTML");

    // typing passes through the relay
    await deskBox.pressSequentially("Thank");
    await seeker.getByRole("status").filter({ hasText: "is typing" }).waitFor({ timeout: T });
    await say(desk, l2);
    await expectTranscript(seeker, [["me", s1], ["them", l1], ["me", s2], ["them", l2]], "the seeker's view");
    await expectTranscript(desk, [["them", s1], ["me", l1], ["them", s2], ["me", l2]], "the listener's view");

    // the listener has the chat open, so the seeker's messages are marked read
    await until(async () => {
      const metas = await seeker.locator('.msg[data-from="me"] .msg-meta').allTextContents();
      return metas.length === 2 && metas.every((m) => /Read/.test(m));
    }, T, "the seeker's messages to be marked read");

    // safety codes: six groups of five digits, equal on both screens
    const seekerCode = await safetyCode(seeker);
    assert.equal(seekerCode, await safetyCode(desk), "both sides show the same safety code");
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
    // the private key is not in sessionStorage: a non-extractable CryptoKey in IndexedDB
    const keyState = (page) => page.evaluate(async (id) => {
      const raw = Object.values(sessionStorage).join("");
      const db = await new Promise((ok, no) => { const r = indexedDB.open("warmline", 1); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
      const entry = await new Promise((ok, no) => {
        const r = db.transaction("chat-keys").objectStore("chat-keys").get(id);
        r.onsuccess = () => ok(r.result);
        r.onerror = () => no(r.error);
      });
      db.close();
      let exported = "refused";
      if (entry) { try { await crypto.subtle.exportKey("pkcs8", entry.privateKey); exported = "exported"; } catch { /* as it should */ } }
      return { pkcs8InStorage: /pkcs8/.test(raw), stored: !!entry, isKey: entry?.privateKey instanceof CryptoKey,
               extractable: entry?.privateKey?.extractable, exported };
    }, sessionId);
    for (const page of [seeker, desk]) {
      const k = await keyState(page);
      assert.deepEqual(k, { pkcs8InStorage: false, stored: true, isKey: true, extractable: false, exported: "refused" });
    }

    // the seeker ends the chat (with a confirmation)
    await endChat(seeker);
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    await seeker.locator("#after-reason").filter({ hasText: "You ended the chat." }).waitFor({ timeout: T });
    await desk.getByRole("tabpanel").getByText("The other person ended the chat.").waitFor({ timeout: T });
    assert.equal(await desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" }).isDisabled(), true);
    const left = await seeker.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("wl.chat.")));
    assert.deepEqual(left, [], "the chat's keys and messages are wiped when it ends");
    await until(async () => !(await keyState(seeker)).stored, T, "the seeker's key to leave IndexedDB when the chat ends");

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

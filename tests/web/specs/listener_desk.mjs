// The listener's desk against the real services: a missed offer (short offer timeout) is
// explained kindly and turns Available off, declining works, the break switch, two chats at once
// in WAI-ARIA tabs (arrow keys, unread counts, the title badge), ending and closing a chat, a
// reload that signs in again and keeps the chat, and signing out that forgets everything.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, waitingSeeker, signInListener, availableSwitch, goAvailable, isOn, offerOn, acceptOffer,
         messageBox, say, waitForMessage, endChat } from "../flows.mjs";

const newSeeker = (stack) => waitingSeeker(stack, { topic: "work", language: "en" });

describe("the listener's desk", () => {
  const suite = withStack({ matchmakerFlags: ["--offer-timeout-ms=4000"] }, async (stack) => ({
    listener: await stack.createListener({ name: "Jo Park", topics: ["work"], languages: ["en"], maxChats: 2 }),
  }));

  it("handles missed and declined offers, breaks, several chats in tabs, reloads and signing out", { timeout: 150000 }, async () => {
    const { stack, listener } = suite;
    const desk = await stack.open("/listener.html");
    await signInListener(desk, "wll_not-a-real-token");
    await desk.getByRole("alert").filter({ hasText: "That listener token is not valid" }).waitFor({ timeout: T });

    await signInListener(desk, listener.token, "Jo Park");
    await desk.getByText("Chats today: 0").waitFor({ timeout: T });
    const available = availableSwitch(desk);
    const onBreak = desk.getByRole("switch", { name: "On a break" });
    await goAvailable(desk);

    // a missed offer: gone after the deadline, a kind reason, Available off
    const a = await newSeeker(stack);
    const offer = offerOn(desk);
    await offer.waitFor({ timeout: T });
    assert.equal(await desk.title(), "(1) Warmline");
    await offer.waitFor({ state: "detached", timeout: T });
    await desk.getByRole("status").filter({ hasText: "You missed an offer, so we set you to away." }).waitFor({ timeout: T });
    await until(async () => !(await isOn(available)), T, "Available to turn off");
    assert.equal(await desk.title(), "Warmline");
    await a.getByRole("button", { name: "Stop waiting" }).click();
    await a.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });

    // declining
    await goAvailable(desk);
    const b = await newSeeker(stack);
    await offer.getByRole("button", { name: "Decline" }).click();
    await offer.waitFor({ state: "detached", timeout: T });
    assert.ok(await isOn(available), "declining keeps the listener available");
    await b.getByRole("button", { name: "Stop waiting" }).click();
    await b.getByRole("button", { name: "Talk to someone" }).waitFor({ timeout: T });

    // a break: away while it lasts, shows how long, available again after
    await onBreak.click();
    await until(async () => (await isOn(onBreak)) && !(await isOn(available)), T, "the break to start");
    await desk.getByText("On a break for less than a minute.").waitFor({ timeout: T });
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "status"), "away");
    await onBreak.click();
    await until(async () => !(await isOn(onBreak)) && (await isOn(available)), T, "the break to end");
    await desk.getByText("Welcome back.").waitFor({ timeout: T });
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "status"), "available");

    // two chats at once, one tab each
    const c = await newSeeker(stack);
    await acceptOffer(desk);
    await messageBox(c).waitFor({ timeout: T });
    const d = await newSeeker(stack);
    await acceptOffer(desk);
    await messageBox(d).waitFor({ timeout: T });
    const tablist = desk.getByRole("tablist", { name: "Chats" });
    const tabs = tablist.getByRole("tab");
    await until(async () => (await tabs.count()) === 2, T, "two tabs");
    await desk.getByText("Chats today: 2").waitFor({ timeout: T });
    assert.equal(await tabs.nth(1).getAttribute("aria-selected"), "true", "the newest chat is shown");
    assert.equal(await desk.getByRole("tabpanel").count(), 1, "one panel visible at a time");

    // arrow keys move between tabs
    await tabs.nth(1).focus();
    await desk.keyboard.press("ArrowLeft");
    assert.equal(await tabs.nth(0).getAttribute("aria-selected"), "true");
    assert.equal(await desk.evaluate(() => document.activeElement.getAttribute("role")), "tab");
    await desk.keyboard.press("ArrowLeft");
    assert.equal(await tabs.nth(1).getAttribute("aria-selected"), "true", "the arrows wrap around");
    await desk.keyboard.press("Home");
    assert.equal(await tabs.nth(0).getAttribute("aria-selected"), "true");
    await desk.keyboard.press("End");
    assert.equal(await tabs.nth(1).getAttribute("aria-selected"), "true");
    assert.equal(await tabs.nth(0).getAttribute("tabindex"), "-1", "only the selected tab is in the Tab order");

    // messages to the chat not shown count as unread, on the tab and in the title
    await say(c, "first from C");
    await say(c, "second from C");
    await tablist.getByRole("tab", { name: /^Chat 1: Work and study\W+2 unread$/ }).waitFor({ timeout: T });
    assert.equal(await desk.title(), "(2) Warmline");
    await say(d, "hello from D");
    await waitForMessage(desk.getByRole("tabpanel"), "hello from D", "them");
    assert.doesNotMatch(await tabs.nth(1).innerText(), /unread/, "the chat on screen has nothing unread");
    await say(desk, "reply to D");
    await waitForMessage(d, "reply to D", "them");
    await tabs.nth(0).click();
    await until(async () => !/unread/.test(await tabs.nth(0).innerText()), T, "the unread count to clear");
    assert.equal(await desk.title(), "Warmline");
    assert.deepEqual(await desk.getByRole("tabpanel").locator(".msg .msg-text").allTextContents(), ["first from C", "second from C"]);
    assert.equal(await c.locator('.msg[data-from="them"]').count(), 0, "C never sees D's chat");

    // end the first chat, then close its tab
    await endChat(desk);
    await c.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    await until(async () => /ended/.test(await tabs.nth(0).innerText()), T, "the tab to say the chat ended");
    await until(() => desk.evaluate(() => document.activeElement?.textContent === "Close this tab"), T,
                "focus to move to Close this tab, not fall to the page's start");
    await desk.getByRole("tabpanel").getByRole("button", { name: "Close this tab" }).click();
    await until(async () => (await tabs.count()) === 1, T, "one tab left");
    assert.equal(await tabs.nth(0).getAttribute("aria-selected"), "true");

    // a reload signs in again, stays available and brings the chat back
    await desk.reload();
    await desk.getByRole("heading", { name: "Jo Park" }).waitFor({ timeout: T });
    await until(async () => (await tabs.count()) === 1, T, "the open chat after the reload");
    await until(() => isOn(available), T, "Available again after the reload");
    assert.deepEqual(await desk.getByRole("tabpanel").locator(".msg .msg-text").allTextContents(), ["hello from D", "reply to D"]);
    await say(d, "after your reload");
    await waitForMessage(desk.getByRole("tabpanel"), "after your reload", "them");

    // signing out with a chat open asks first, then forgets the token and the chat keys
    await desk.getByRole("button", { name: "Sign out" }).click();
    await desk.getByRole("alert").filter({ hasText: "You still have 1 open chat" }).waitFor({ timeout: T });
    await desk.getByRole("button", { name: "Sign out anyway" }).click();
    await desk.getByLabel("Listener token").waitFor({ timeout: T });
    const left = await desk.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("wl.")));
    assert.deepEqual(left, []);
    await desk.reload();
    await desk.getByLabel("Listener token").waitFor({ timeout: T });
    assert.equal(await desk.getByRole("heading", { name: "Jo Park" }).count(), 0, "no sign-in after signing out");
    assert.deepEqual(stack.pageErrors, []);
  });
});

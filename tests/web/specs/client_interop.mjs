// The browser and the C++ terminal client speak the same end-to-end encryption: a listener in
// Chromium chats with a seeker in warmline-client (driven through its stdin and stdout), both
// ways, with non-ASCII text, across a dropped relay connection on the terminal's side, and both
// show the same safety code. The browser ends the chat and the terminal hears of it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, availableListener, offerOn, acceptOffer, say, safetyCode, endChat } from "../flows.mjs";

async function theirTexts(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible .msg[data-from="them"] .msg-text').allTextContents();
}

describe("a browser listener and a terminal seeker", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Robin", topics: ["loneliness"], languages: ["pt-BR"] }),
  }));

  it("chat both ways with equal safety codes", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const desk = await availableListener(stack, listener, { name: "Robin" });

    const seeker = stack.client(["seeker"]);
    await seeker.waitFor(/seekerWelcome/, T);
    seeker.send("request loneliness pt-BR");
    const offer = offerOn(desk);
    await offer.waitFor({ timeout: T });
    assert.match(await offer.innerText(), /Loneliness/);
    assert.match(await offer.innerText(), /Português \(Brasil\)/);
    await acceptOffer(desk);

    // the terminal prints the code once both keys are known; the browser shows the same one
    const m = await seeker.waitFor(/safety code is\s+(\d{5}(?: \d{5}){5})/, T);
    assert.equal(await safetyCode(desk), m[1], "browser and terminal compute the same safety code");

    // terminal -> browser
    let from = seeker.output().length;
    seeker.send("Oi. Me sinto muito sozinho ultimamente.");
    seeker.send("Ninguém liga pra mim — 🙁 \"de verdade\"");
    await until(async () => (await theirTexts(desk)).length === 2, T, "two messages from the terminal");
    assert.deepEqual(await theirTexts(desk), ["Oi. Me sinto muito sozinho ultimamente.", "Ninguém liga pra mim — 🙁 \"de verdade\""]);

    // browser -> terminal
    await say(desk, "Estou aqui com você. Conte-me mais — ✨");
    await seeker.waitFor(/them: Estou aqui com você\. Conte-me mais — ✨\n/, T, from);
    await say(desk, "Line one\nline two");
    await seeker.waitFor(/them: Line one\n\s+line two\n/, T, from);

    // the terminal drops its relay connection and resumes; nothing is lost either way
    from = seeker.output().length;
    seeker.send("/drop");
    await say(desk, "Sent while you were cut off.");
    await seeker.waitFor(/them: Sent while you were cut off\.\n/, T, from);
    seeker.send("Voltei.");
    await until(async () => (await theirTexts(desk)).length === 3, T, "the terminal's message after its drop");
    assert.deepEqual((await theirTexts(desk)).slice(2), ["Voltei."]);
    const heard = seeker.output().match(/them: /g) || [];
    assert.equal(heard.length, 3, "the terminal heard each browser message exactly once");

    // the browser ends the chat; the terminal is told
    from = seeker.output().length;
    await endChat(desk);
    await seeker.waitFor(/──[^\n]*(ended|end)/i, T, from);
    await desk.getByRole("tabpanel").getByText("You ended the chat.").waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
    await seeker.stop();
  });
});

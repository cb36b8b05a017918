// The browser and the C++ terminal client speak the same end-to-end encryption: a listener in
// Chromium chats with a seeker in warmline-client (driven through its stdin and stdout), both
// ways, with non-ASCII text, across a dropped relay connection on the terminal's side, and both
// show the same safety code. The browser ends the chat and the terminal hears of it.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;

async function theirTexts(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible .msg[data-from="them"] .msg-text').allTextContents();
}

describe("a browser listener and a terminal seeker", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Robin", topics: ["loneliness"], languages: ["pt-BR"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("chat both ways with equal safety codes", { timeout: 90000 }, async () => {
    const desk = await stack.open("/listener.html");
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("heading", { name: "Robin" }).waitFor({ timeout: T });
    await desk.getByRole("switch", { name: "Available" }).click();
    await until(async () => (await desk.getByRole("switch", { name: "Available" }).getAttribute("aria-checked")) === "true",
                T, "the listener to be available");

    const seeker = stack.client(["seeker"]);
    await seeker.waitFor(/seekerWelcome/, T);
    seeker.send("request loneliness pt-BR");
    const offer = desk.getByRole("region", { name: "New chat request" });
    await offer.waitFor({ timeout: T });
    assert.match(await offer.innerText(), /Loneliness/);
    assert.match(await offer.innerText(), /Português \(Brasil\)/);
    await offer.getByRole("button", { name: "Accept" }).click();

    // the terminal prints the code once both keys are known; the browser shows the same one
    const m = await seeker.waitFor(/safety code is\s+(\d{5}(?: \d{5}){5})/, T);
    await desk.getByRole("tabpanel").getByRole("button", { name: "Show safety code" }).click();
    const code = desk.getByRole("tabpanel").getByTestId("safety-code");
    await until(async () => /^\d{5}( \d{5}){5}$/.test((await code.innerText()).trim()), T, "the browser's safety code");
    assert.equal((await code.innerText()).trim(), m[1], "browser and terminal compute the same safety code");

    // terminal -> browser
    let from = seeker.output().length;
    seeker.send("Oi. Me sinto muito sozinho ultimamente.");
    seeker.send("Ninguém liga pra mim — 🙁 \"de verdade\"");
    await until(async () => (await theirTexts(desk)).length === 2, T, "two messages from the terminal");
    assert.deepEqual(await theirTexts(desk), ["Oi. Me sinto muito sozinho ultimamente.", "Ninguém liga pra mim — 🙁 \"de verdade\""]);

    // browser -> terminal
    const box = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });
    await box.fill("Estou aqui com você. Conte-me mais — ✨");
    await box.press("Enter");
    await seeker.waitFor(/them: Estou aqui com você\. Conte-me mais — ✨\n/, T, from);
    await box.fill("Line one\nline two");
    await box.press("Enter");
    await seeker.waitFor(/them: Line one\n\s+line two\n/, T, from);

    // the terminal drops its relay connection and resumes; nothing is lost either way
    from = seeker.output().length;
    seeker.send("/drop");
    await box.fill("Sent while you were cut off.");
    await box.press("Enter");
    await seeker.waitFor(/them: Sent while you were cut off\.\n/, T, from);
    seeker.send("Voltei.");
    await until(async () => (await theirTexts(desk)).length === 3, T, "the terminal's message after its drop");
    assert.deepEqual((await theirTexts(desk)).slice(2), ["Voltei."]);
    const heard = seeker.output().match(/them: /g) || [];
    assert.equal(heard.length, 3, "the terminal heard each browser message exactly once");

    // the browser ends the chat; the terminal is told
    from = seeker.output().length;
    await desk.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
    await desk.getByRole("button", { name: "Yes, end the chat" }).click();
    await seeker.waitFor(/──[^\n]*(ended|end)/i, T, from);
    await desk.getByRole("tabpanel").getByText("You ended the chat.").waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
    await seeker.stop();
  });
});

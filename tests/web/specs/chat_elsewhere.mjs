// A chat that goes on somewhere else stops here, says why, and leaves no message box that looks as
// if it could send: a seeker whose hello the relay refuses because another device holds the chat
// with other keys (the refusal played by the test, as the relay sends it), and a listener whose
// duplicated tab took the chat over (4001). The chat goes on where it went.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, routeSockets, askForChat, waitInLine, availableListener, acceptAndChat,
         messageBox, say, waitForMessage, endChat, axeViolations, duplicateTab } from "../flows.mjs";

const OTHER_DEVICE = "This chat is open on another device, with other keys, so it cannot continue here.";

describe("a chat that goes on elsewhere", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Mo", topics: ["depression"], languages: ["en"], maxChats: 2 }),
  }));

  it("stops the seeker's page with the relay's reason and a disabled message box", { timeout: 60000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    // After the first connection, the test answers the seeker's hello as the relay does when
    // another device holds this side of the chat with other keys.
    const refuse = { on: false, hellos: 0 };
    const relay = await routeSockets(seeker, "/v1/relay", {
      fromPage: (m, forward, ws) => {
        const msg = JSON.parse(String(m));
        if (!msg.hello || !refuse.on) return forward();
        refuse.hellos += 1;
        ws.send(JSON.stringify({ requestId: msg.requestId, error: { code: "WRONG_STATE", message: OTHER_DEVICE } }));
      },
    });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "depression", language: "en" });
    await waitInLine(seeker);
    const desk = await availableListener(stack, listener, { name: "Mo" });
    await acceptAndChat(seeker, desk);
    await say(seeker, "hi");
    await waitForMessage(desk, "hi", "them");

    refuse.on = true;
    relay.at(-1).close({ code: 4000, reason: "network drop" });
    await seeker.getByRole("status").filter({ hasText: OTHER_DEVICE }).waitFor({ timeout: T });
    assert.ok(await messageBox(seeker).isDisabled(), "the message box is disabled");
    assert.ok(await seeker.getByRole("button", { name: "Send" }).isDisabled());
    assert.equal(await seeker.getByRole("button", { name: "End chat" }).count(), 0);
    assert.equal(refuse.hellos, 1, "the page stops instead of trying again");
    assert.deepEqual(await axeViolations(seeker), []);
    assert.deepEqual(stack.pageErrors, []);
    await endChat(desk);
    await desk.getByRole("tab", { name: /\(ended\)/ }).waitFor({ timeout: T });
    await seeker.context().close();
    await desk.context().close();
  });

  it("stops a listener's tab that another tab took over, and the chat goes on there", { timeout: 60000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await stack.open("/");
    await askForChat(seeker, { topic: "depression", language: "en" });
    const desk = await availableListener(stack, listener, { name: "Mo" });
    await acceptAndChat(seeker, desk);
    await say(seeker, "first");
    await waitForMessage(desk, "first", "them");

    // The listener duplicates the tab: the copy has the same session storage (token and keys).
    const copy = await duplicateTab(stack, desk, "/listener.html");
    await waitForMessage(copy, "first", "them");

    const panel = desk.getByRole("tabpanel");
    await panel.getByRole("status").filter({ hasText: "This chat was opened in another tab or window, so it has stopped here." })
      .waitFor({ timeout: T });
    assert.ok(await messageBox(desk).isDisabled(), "the old tab's message box is disabled");
    await desk.getByRole("tab", { name: /stopped here/ }).waitFor({ timeout: T });
    await panel.getByRole("button", { name: "Close this tab" }).click();
    await until(async () => (await desk.getByRole("tab").count()) === 0, T, "the stopped chat's tab to close");

    await say(copy, "I'm here, in my other tab");
    await waitForMessage(seeker, "I'm here, in my other tab", "them");
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
  });
  it("stops the older of two tabs by the chat's Web Lock alone, before the relay could tell it", { timeout: 60000 },
     async () => {
    const { stack, listener } = suite;
    const seeker = await stack.open("/");
    await askForChat(seeker, { topic: "depression", language: "en" });
    const desk = await blankPage(stack);
    // the desk's relay connection, cut on demand: nothing the relay says reaches the page any
    // more, its 4001 included, so only the lock can stop this tab
    const cut = { on: false };
    await desk.routeWebSocket((url) => url.pathname === "/v1/relay", (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => { if (!cut.on) ws.send(m); });
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => { if (!cut.on) ws.close({ code, reason }); });
    });
    await availableListener(stack, listener, { page: desk, name: "Mo" });
    await acceptAndChat(seeker, desk);
    await say(seeker, "before the copy");
    await waitForMessage(desk, "before the copy", "them");

    cut.on = true;
    const copy = await duplicateTab(stack, desk, "/listener.html");
    await waitForMessage(copy, "before the copy", "them");
    const panel = desk.getByRole("tabpanel");
    await panel.getByRole("status").filter({ hasText: "This chat was opened in another tab or window, so it has stopped here." })
      .waitFor({ timeout: T });
    assert.ok(await messageBox(desk).isDisabled(), "the old tab can seal nothing more");
    await say(copy, "from the tab that holds the chat");
    await waitForMessage(seeker, "from the tab that holds the chat", "them");
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
  });
});

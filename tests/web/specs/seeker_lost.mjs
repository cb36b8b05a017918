// A seeker who closes the tab mid-chat: the listener is told the person's connection dropped, then,
// after the relay's grace, that the person did not come back and the chat has ended (a kind word,
// no usable message box); the chat's tab closes, and the freed slot gets the next waiting seeker's
// offer. Short relay timings come from the harness flags.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, waitingSeeker, waitInLine, availableListener, offerOn, acceptOffer, acceptAndChat, messageBox,
         say, waitForMessage } from "../flows.mjs";

const AWAY_MS = 1500;
const GRACE_MS = 5000;

describe("a seeker lost mid-chat", () => {
  const suite = withStack({
    relayFlags: [`--peer-away-ms=${AWAY_MS}`, `--peer-grace-ms=${GRACE_MS}`, "--presence-sweep-ms=200"],
  }, async (stack) => ({
    listener: await stack.createListener({ name: "Noa", topics: ["work"], languages: ["en"], maxChats: 1 }),
  }));

  it("tells the listener, ends the chat kindly after the grace, and gives the freed slot the next seeker",
     { timeout: 60000 }, async () => {
    const { stack, listener } = suite;
    const first = await waitingSeeker(stack, { topic: "work", language: "en" });
    const desk = await availableListener(stack, listener, { name: "Noa" });
    await acceptAndChat(first, desk);
    await say(first, "I have a question");
    await waitForMessage(desk, "I have a question", "them");
    // the next seeker waits: the listener's one slot is taken
    const next = await waitingSeeker(stack, { topic: "work", language: "en" });
    await waitInLine(next, 1);

    // The seeker closes the tab.
    await first.close();
    const panel = desk.getByRole("tabpanel");
    await panel.getByRole("status").filter({ hasText: "The person's connection dropped. Waiting for them to come back…" })
      .waitFor({ timeout: T });
    assert.ok(await messageBox(desk).isEnabled(), "the listener can keep writing while waiting");
    await say(desk, "take your time, I'm here");
    await desk.locator('.msg[data-from="me"]').filter({ hasText: "take your time" }).filter({ hasText: "Sent" })
      .waitFor({ timeout: T });

    // After the grace: a kind ending, nothing that can send, and the next seeker's offer.
    await panel.getByRole("status").filter({ hasText: "The person lost their connection and didn't come back, so the chat has ended." })
      .waitFor({ timeout: GRACE_MS + T });
    assert.ok(await messageBox(desk).isDisabled());
    assert.equal(await panel.getByRole("button", { name: "End chat" }).count(), 0);
    await desk.getByRole("tab", { name: /\(ended\)/ }).waitFor({ timeout: T });
    await offerOn(desk).waitFor({ timeout: T });

    // The ended chat's tab closes; accepting the offer opens the next chat in its place.
    await panel.getByRole("button", { name: "Close this tab" }).click();
    await until(async () => (await desk.getByRole("tab").count()) === 0, T, "the ended chat's tab to close");
    await desk.getByText("No open chats.").waitFor({ timeout: T });
    await acceptOffer(desk);
    await messageBox(next).waitFor({ timeout: T });
    await say(next, "hi, is this Noa?");
    await waitForMessage(desk, "hi, is this Noa?", "them");
    assert.equal(await desk.getByRole("tab").count(), 1);
    assert.deepEqual(stack.pageErrors, []);
    await next.context().close();
    await desk.context().close();
  });
});

// A listener whose browser goes away mid-chat (its context closed: no relay connection, no goodbye).
// The seeker is told the listener's connection dropped and can keep writing; after the relay's
// grace the chat ends as peer_lost and the seeker is back at the front of the line with a kind
// word (not the after-chat screen), and a second listener who is available gets the offer. A
// second device without the chat's keys is refused while the first holds the chat (reason shown,
// message box disabled), and ends the chat at once when the first is gone (the relay's sentence).
// Short relay timings come from the harness flags.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, waitingSeeker, availableListener, signInListener, offerOn, acceptAndChat,
         messageBox, say, waitForMessage, endChat, axeViolations } from "../flows.mjs";

const AWAY_MS = 1500;
const GRACE_MS = 6000;
const DROPPED = "The listener's connection dropped. Waiting for them to come back…";
const REQUEUED = "Your listener's connection was lost. You're back at the front of the line, and we're finding someone for you now.";
const OTHER_DEVICE = "This chat is open on another device, with other keys, so it cannot continue here.";
const DEVICE_GONE = "This chat was open on another device, which is gone, and its keys went with it, so it has ended here. " +
                    "The person is back at the front of the line and will be matched again quickly.";

// The chat tab's panel on a listener's desk.
const panel = (desk) => desk.getByRole("tabpanel");

describe("a listener lost mid-chat", () => {
  const suite = withStack({
    relayFlags: [`--peer-away-ms=${AWAY_MS}`, `--peer-grace-ms=${GRACE_MS}`, "--presence-sweep-ms=200"],
  }, async (stack) => ({
    ana: await stack.createListener({ name: "Ana", topics: ["anxiety"], languages: ["en"], maxChats: 1 }),
    ben: await stack.createListener({ name: "Ben", topics: ["anxiety"], languages: ["en"], maxChats: 1 }),
  }));

  it("tells the seeker, puts them back at the front of the line after the grace, and offers them to another listener",
     { timeout: 60000 }, async () => {
    const { stack, ana, ben } = suite;
    const seeker = await waitingSeeker(stack, { topic: "anxiety", language: "en" });
    const desk = await availableListener(stack, ana, { name: "Ana" });
    await offerOn(desk).waitFor({ timeout: T });
    await acceptAndChat(seeker, desk);
    await say(seeker, "hello Ana");
    await waitForMessage(desk, "hello Ana", "them");
    await say(desk, "hello, I'm here");
    await waitForMessage(seeker, "hello, I'm here", "them");

    // Ana on a second browser, without the chat's keys, while the first holds it: refused there,
    // with the reason and no message box that looks usable; the first device carries on.
    const second = await stack.open("/listener.html");
    await signInListener(second, ana.token, "Ana");
    await panel(second).getByRole("status").filter({ hasText: OTHER_DEVICE }).waitFor({ timeout: T });
    assert.ok(await messageBox(second).isDisabled(), "the refused device's message box is disabled");
    assert.equal(await panel(second).getByRole("button", { name: "End chat" }).count(), 0);
    await second.getByRole("tab", { name: /stopped here/ }).waitFor({ timeout: T });
    await second.context().close();
    await say(desk, "still me, on my first device");
    await waitForMessage(seeker, "still me, on my first device", "them");

    // Ben is available with room; nobody waits for him yet.
    const bensDesk = await availableListener(stack, ben, { name: "Ben" });

    // Ana's browser goes away: the seeker hears it after the away time, and can keep writing.
    await desk.context().close();
    const status = seeker.getByRole("status").filter({ hasText: DROPPED });
    await status.waitFor({ timeout: T });
    assert.ok(await messageBox(seeker).isEnabled(), "the message box stays usable while waiting");
    await say(seeker, "are you still there?");
    await seeker.locator('.msg[data-from="me"]').filter({ hasText: "are you still there?" })
      .filter({ hasText: "Sent" }).waitFor({ timeout: T });

    // After the grace: back in line with a kind word, not the after-chat screen; Ben gets the offer.
    await seeker.getByRole("heading", { name: "Finding someone for you" }).waitFor({ timeout: GRACE_MS + T });
    await seeker.getByRole("status").filter({ hasText: REQUEUED }).waitFor({ timeout: T });
    assert.equal(await seeker.getByRole("heading", { name: "The chat has ended" }).isVisible(), false);
    assert.deepEqual(await axeViolations(seeker), [], "axe-core on the waiting screen with the kind word");
    await stack.screenshot(seeker, "seeker-requeued");
    await offerOn(bensDesk).waitFor({ timeout: T });
    await acceptAndChat(seeker, bensDesk);
    assert.equal(await seeker.getByRole("status").filter({ hasText: REQUEUED }).count(), 0, "the kind word goes with the new chat");
    assert.deepEqual(await seeker.locator(".msg").count(), 0, "the new chat starts empty");
    await say(seeker, "hello Ben");
    await waitForMessage(bensDesk, "hello Ben", "them");
    await say(bensDesk, "hi, I'm Ben");
    await waitForMessage(seeker, "hi, I'm Ben", "them");

    // Ana signs in again from a new browser: the chat is over, and nothing there can send.
    const again = await stack.open("/listener.html");
    await signInListener(again, ana.token, "Ana");
    await again.getByText("No open chats.").waitFor({ timeout: T });
    assert.equal(await messageBox(again).count(), 0, "no message box for a chat that ended");
    assert.deepEqual(stack.pageErrors, []);
    await endChat(bensDesk);
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    await again.context().close();
    await bensDesk.context().close();
    await seeker.context().close();
  });

  it("ends the chat at once with the relay's sentence when the listener comes back on a device without its keys",
     { timeout: 60000 }, async () => {
    const { stack, ana } = suite;
    const seeker = await waitingSeeker(stack, { topic: "anxiety", language: "en" });
    const desk = await availableListener(stack, ana, { name: "Ana" });
    await acceptAndChat(seeker, desk);
    await say(seeker, "hi");
    await waitForMessage(desk, "hi", "them");

    // The first device goes; once the relay has noticed (the seeker is told), a new one signs in.
    await desk.context().close();
    await seeker.getByRole("status").filter({ hasText: DROPPED }).waitFor({ timeout: T });
    const fresh = await stack.open("/listener.html");
    await signInListener(fresh, ana.token, "Ana");
    await panel(fresh).getByRole("status").filter({ hasText: DEVICE_GONE }).waitFor({ timeout: T });
    assert.ok(await messageBox(fresh).isDisabled(), "no usable message box on the chat that ended");
    await fresh.getByRole("tab", { name: /\(ended\)/ }).waitFor({ timeout: T });
    await panel(fresh).getByRole("button", { name: "Close this tab" }).click();
    await fresh.getByText("No open chats.").waitFor({ timeout: T });

    // the seeker did not wait out the grace: back at the front of the line at once
    await seeker.getByRole("status").filter({ hasText: REQUEUED }).waitFor({ timeout: T });
    await seeker.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
    await fresh.context().close();
    await seeker.context().close();
  });
});

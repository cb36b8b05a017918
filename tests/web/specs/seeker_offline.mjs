// A waiting seeker whose network goes (the browser offline): once the matchmaker sees the
// connection is gone (its idle timeout, short here), the request is parked and keeps its place, so a
// listener who becomes available meanwhile gets no offer for someone who is not there. Back online
// within the grace, the page reconnects at once, keeps its place, and the listener gets the offer.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, waitingSeeker, waitInLine, availableListener, offerOn, acceptAndChat, say,
         waitForMessage } from "../flows.mjs";

describe("a waiting seeker who drops off the network", () => {
  const suite = withStack({ matchmakerFlags: ["--idle-timeout-ms=1500", "--grace-ms=30000"] }, async (stack) => ({
    listener: await stack.createListener({ name: "Rui", topics: ["relationships"], languages: ["en"], maxChats: 1 }),
  }));

  it("is not offered while gone, and keeps its place when back", { timeout: 60000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await waitingSeeker(stack, { topic: "relationships", language: "en" });
    await waitInLine(seeker, 1);

    await seeker.context().setOffline(true);
    await seeker.getByRole("status").filter({ hasText: "You're offline. We'll reconnect as soon as you're back online; you keep your place." })
      .waitFor({ timeout: T });
    // the matchmaker has noticed: the request is parked (kept, never offered)
    await until(async () => (await stack.redis("ZCARD", "wl:gone")) === "1", T, "the seeker's connection to be seen as gone");

    // A listener becomes available: matching runs in the same step, and offers no one.
    const desk = await availableListener(stack, listener, { name: "Rui" });
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "offers"), "0", "no offer while the seeker is gone");
    assert.equal(await offerOn(desk).count(), 0);
    assert.equal(await stack.redis("ZCARD", "wl:waiting:relationships:en"), "1", "the request is still open, parked");

    // Back online: the page reconnects at once, resumes the same request, and the listener gets it.
    await seeker.context().setOffline(false);
    await offerOn(desk).waitFor({ timeout: T });
    assert.equal(await stack.redis("ZCARD", "wl:waiting:relationships:en"), "1", "the same request, not a second one");
    assert.equal(await seeker.getByRole("heading", { name: "Finding someone for you" }).isVisible(), true, "still waiting, not starting over");
    assert.equal(await seeker.locator("#conn-status").innerText(), "");
    await acceptAndChat(seeker, desk);
    await say(seeker, "I'm back");
    await waitForMessage(desk, "I'm back", "them");
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
  });
});

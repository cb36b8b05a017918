// A listener reports the person they are talking with, from the chat's own tab: the ticked
// messages go to the safety team, "Block" ends the chat at once and they are never matched
// again; with the matchmaker's hold after one listener's report, the person's next request is
// paused, and their page says so plainly, with the crisis lines.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, availableListener, askForChat, acceptOffer, say, waitForMessage, offerOn,
         reportFromDesk as report } from "../flows.mjs";

async function chatting(stack, listener) {
  const seeker = await blankPage(stack);
  const desk = await blankPage(stack);
  await availableListener(stack, listener, { page: desk });
  await visit(stack, seeker);
  await askForChat(seeker, { topic: "anxiety" });
  await acceptOffer(desk);
  await say(seeker, "I know where you live.");
  await waitForMessage(desk, "I know where you live.", "them");
  return { seeker, desk };
}

describe("a listener reports and blocks a seeker", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Noor", topics: ["anxiety"], languages: ["en"], maxChats: 2 }),
  }));

  it("ends the chat, sends only the ticked message, and never matches the two again", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const { seeker, desk } = await chatting(stack, listener);
    await report(desk, { tick: "I know where you live.", reason: "A threat.", block: true });
    await desk.getByText("Thank you. Your report was sent, and you won't be matched with this person again.").waitFor({ timeout: T });
    // the chat is over on both sides
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    await desk.getByRole("tab", { name: /\(ended\)/ }).waitFor({ timeout: T });
    const id = (await stack.redis("ZRANGE", "wl:reports", "0", "-1")).split("\n").find((m) => m.endsWith(":l"));
    assert.ok(id, "a listener's report in the index");
    assert.equal(await stack.redis("HGET", `wl:report:${id}`, "blocked"), "1");
    assert.equal(await stack.redis("HGET", `wl:report:${id}`, "reason"), "A threat.");
    assert.match(await stack.redis("HGET", `wl:report:${id}`, "messages"), /I know where you live\./);

    // the person asks again; the listener is free and covers the topic but is not offered them
    await seeker.getByRole("button", { name: "Start a new chat" }).click();
    await askForChat(seeker, { topic: "anxiety" });
    await seeker.getByText("No listener who covers this is free right now.", { exact: false }).waitFor({ timeout: T });
    // the request was matched (or not) in the step that queued it: the free listener holds no offer
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "offers"), "0");
    assert.equal(await offerOn(desk).count(), 0);
    assert.deepEqual(stack.pageErrors, []);
  });
});

describe("a seeker on hold after listeners' reports", () => {
  const suite = withStack({ matchmakerFlags: ["--hold-after-reports", "1", "--hold-min", "30"] }, async (stack) => ({
    listener: await stack.createListener({ name: "Ines", topics: ["anxiety"], languages: ["en"], maxChats: 2 }),
    other: await stack.createListener({ name: "Tom", topics: ["anxiety"], languages: ["en"], maxChats: 2 }),
  }));

  it("is told the request is paused and for how long, with the crisis lines, and no listener is offered it", { timeout: 90000 }, async () => {
    const { stack, listener, other } = suite;
    const { seeker, desk } = await chatting(stack, listener);
    await report(desk, { reason: "Abusive.", block: true });
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });
    const otherDesk = await blankPage(stack);
    await availableListener(stack, other, { page: otherDesk });
    await seeker.getByRole("button", { name: "Start a new chat" }).click();
    await askForChat(seeker, { topic: "anxiety" });
    await seeker.getByText("Your request is paused for now.").waitFor({ timeout: T });
    await seeker.getByText(/passed to listeners after a pause: about 30 minutes from now/).waitFor({ timeout: T });
    assert.equal(await seeker.locator("#waiting-crisis").isVisible(), true);
    await until(async () => (await stack.redis("ZCARD", "wl:due:hold")) === "1", T, "the request in wl:due:hold");
    assert.equal(await stack.redis("HGET", `wl:listener:${other.id}`, "offers"), "0");
    assert.equal(await stack.redis("ZCARD", "wl:q:anxiety:en"), "0", "not in the queue any listener reads");
    assert.equal(await offerOn(otherDesk).count(), 0);
    assert.deepEqual(stack.pageErrors, []);
  });
});

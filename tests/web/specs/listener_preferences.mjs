// "What I take now" on the listener's desk (SetPreferences): the topics and languages the
// listener is trained for, all taken at first, and chats at once up to the admin's cap; narrowing
// them changes which seekers are offered, is kept in Redis, and a choice of nothing is refused
// with a sentence.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, availableListener, offerOn, waitingSeeker, axeViolations } from "../flows.mjs";

describe("the listener's preferences", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Noa", topics: ["anxiety", "grief"], languages: ["en", "es"], maxChats: 3 }),
  }));

  it("narrows topics and chats at once within the training and the cap", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const desk = await availableListener(stack, listener);
    await desk.getByText("What I take now").click();
    const form = desk.locator("#prefs-form");
    const topic = (name) => form.getByRole("checkbox", { name });
    await topic("Grief and loss").waitFor({ timeout: T });
    for (const name of ["Anxiety and stress", "Grief and loss", "English", "Español"])
      assert.equal(await topic(name).isChecked(), true, `${name} is taken at first`);
    assert.equal(await form.getByRole("checkbox").count(), 4, "only what the listener is trained for");
    const max = form.getByLabel("Chats at once");
    assert.deepEqual(await max.locator("option").allInnerTexts(), ["1", "2", "3"], "up to the admin's cap");
    assert.equal(await max.inputValue(), "3");
    assert.deepEqual(await axeViolations(desk), []);

    // nothing at all is refused, and nothing is sent
    await topic("Anxiety and stress").uncheck();
    await topic("Grief and loss").uncheck();
    await form.getByRole("button", { name: "Save" }).click();
    await form.getByRole("alert").filter({ hasText: "Choose at least one topic and one language." }).waitFor({ timeout: T });
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "atopics"), "");

    // anxiety only, two at once
    await topic("Anxiety and stress").check();
    await max.selectOption("2");
    await form.getByRole("button", { name: "Save" }).click();
    await form.getByRole("status").filter({ hasText: "Saved." }).waitFor({ timeout: T });
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "atopics"), "anxiety");
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "max"), "2");
    assert.equal(await stack.redis("SISMEMBER", "wl:online:grief:en", listener.id), "0");

    // a seeker asking for grief is not offered to them; one asking for anxiety is
    const grief = await waitingSeeker(stack, { topic: "grief", language: "en" });
    await grief.getByText(/No listener who covers this is free right now/).first().waitFor({ timeout: T });
    assert.equal(await offerOn(desk).count(), 0);
    await waitingSeeker(stack, { topic: "anxiety", language: "en" });
    await offerOn(desk).waitFor({ timeout: T });
    await until(async () => (await offerOn(desk).innerText()).includes("Anxiety"), T, "the anxiety offer");
    // a reload shows what was saved
    await desk.reload();
    await desk.getByText("What I take now").click();
    await topic("Grief and loss").waitFor({ timeout: T });
    assert.equal(await topic("Grief and loss").isChecked(), false);
    assert.equal(await topic("Anxiety and stress").isChecked(), true);
    assert.equal(await max.inputValue(), "2");
    assert.deepEqual(stack.pageErrors, []);
  });
});

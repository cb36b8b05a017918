// "I am in crisis now": the language's crisis resources show the moment the box is ticked, before
// anything is asked of the matchmaker, and follow the chosen language; the request goes ahead of
// a seeker who was already waiting, and is the one offered first. The flag travels with the chat:
// the listener's chat tab and chat header say the person is in crisis and give the crisis lines,
// again after a reload (from the sign-in's open chats).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, waitingSeeker, waitInLine, availableListener, offerOn, acceptAndChat,
         axeViolations, crisisLines } from "../flows.mjs";
import { anyLanguage } from "../languages.mjs";

describe("a seeker in crisis", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Ana", topics: ["anxiety"], languages: ["en", "de"], maxChats: 1 }),
  }));

  it("sees crisis resources at once and is served before a seeker already waiting", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    // a seeker without a crisis is waiting first
    const calm = await waitingSeeker(stack, { topic: "anxiety", language: "en" });
    await waitInLine(calm, 1);

    const crisis = await blankPage(stack);
    const sockets = [];
    crisis.on("websocket", (ws) => sockets.push(ws.url()));
    await visit(stack, crisis);
    await crisis.getByLabel("Topic").selectOption("anxiety");
    await crisis.getByLabel("Language").selectOption("en");
    // (the page speaks the language chosen for the chat, German for a moment below)
    const region = crisis.getByRole("region", { name: anyLanguage("seeker.crisis.title") });
    assert.equal(await region.isVisible(), false, "no crisis box before it is asked for");
    await crisis.getByRole("checkbox", { name: "I am in crisis now" }).check();
    await region.waitFor({ state: "visible", timeout: 2000 });
    assert.ok(await region.getByRole("heading", { name: "If you are in danger right now" }).isVisible());
    const en = crisisLines(stack, "en");
    for (const r of en) {
      assert.ok(await region.getByText(r.name, { exact: true }).isVisible(), `${r.name} is shown`);
      if (r.phone) assert.ok(await region.getByRole("link", { name: r.phone }).isVisible(), `${r.phone} can be called`);
    }
    assert.deepEqual(sockets, [], "the resources come from the catalogue, before any request");

    // they follow the language
    await crisis.getByLabel("Language").selectOption("de");
    const de = crisisLines(stack, "de");
    await region.getByText(de[1].name, { exact: true }).waitFor({ timeout: 2000 });
    assert.equal(await region.getByText(en[1].name, { exact: true }).count(), 0);
    await crisis.getByLabel(anyLanguage("seeker.language")).selectOption("en");
    await region.getByText(en[0].name, { exact: true }).waitFor({ timeout: 2000 });

    // the crisis request goes to the front of the line
    await crisis.getByRole("button", { name: "Talk to someone" }).click();
    await waitInLine(crisis, 1);
    const waitingRegion = crisis.getByRole("region", { name: "If you are in danger right now" }).filter({ visible: true });
    await waitingRegion.getByText(en[0].name, { exact: true }).waitFor({ timeout: T });
    await waitInLine(calm, 2);

    // the first offer is the crisis request
    const desk = await availableListener(stack, listener);
    const offer = offerOn(desk);
    await offer.waitFor({ timeout: T });
    assert.equal(await offer.count(), 1, "one chat at a time: one offer");
    assert.match(await offer.innerText(), /in crisis/);
    await acceptAndChat(crisis, desk);
    // the calm seeker is now first and still waiting
    await waitInLine(calm, 1);
    assert.equal(await calm.getByRole("textbox", { name: "Message" }).count(), 0);
    assert.equal(await stack.redis("ZCARD", "wl:q:anxiety:en"), "1");
    await until(async () => (await desk.getByRole("tab").count()) === 1, T, "the listener's chat tab");

    // the listener's chat shows the crisis: on its tab, and in its header with the crisis lines
    const expectCrisisChat = async (what) => {
      await desk.getByRole("tab", { name: /in crisis/ }).waitFor({ timeout: T });
      const header = desk.getByRole("tabpanel").getByRole("region", { name: "This person said they are in crisis now" });
      await header.waitFor({ timeout: T });
      // the language's general lines: the listener is not told where the seeker is
      for (const r of crisisLines(stack, "en", "")) assert.ok(await header.getByText(r.name, { exact: true }).isVisible(), `${what}: ${r.name} is at hand`);
    };
    await expectCrisisChat("after accepting");
    assert.deepEqual(await axeViolations(desk), [], "axe-core on the crisis chat");
    await stack.screenshot(desk, "listener-crisis-chat");
    await desk.reload();
    await expectCrisisChat("after a reload");
    assert.deepEqual(stack.pageErrors, []);
    await crisis.context().close();
  });
});

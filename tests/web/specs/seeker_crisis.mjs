// "I am in crisis now": the language's crisis resources show the moment the box is ticked, before
// anything is asked of the matchmaker, and follow the chosen language; the request goes ahead of
// a seeker who was already waiting, and is the one offered first.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;

describe("a seeker in crisis", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Ana", topics: ["anxiety"], languages: ["en", "de"], maxChats: 1 });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("sees crisis resources at once and is served before a seeker already waiting", { timeout: 90000 }, async () => {
    // a seeker without a crisis is waiting first
    const calm = await stack.open("/");
    await calm.getByLabel("Topic").selectOption("anxiety");
    await calm.getByLabel("Language").selectOption("en");
    await calm.getByRole("button", { name: "Talk to someone" }).click();
    await calm.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });

    const browser = await stack.browser();
    const context = await browser.newContext();
    const crisis = await context.newPage();
    const sockets = [];
    crisis.on("websocket", (ws) => sockets.push(ws.url()));
    await crisis.goto(stack.webUrl);
    await crisis.getByLabel("Topic").selectOption("anxiety");
    await crisis.getByLabel("Language").selectOption("en");
    const region = crisis.getByRole("region", { name: "If you are in danger right now" });
    assert.equal(await region.isVisible(), false, "no crisis box before it is asked for");
    await crisis.getByRole("checkbox", { name: "I am in crisis now" }).check();
    await region.waitFor({ state: "visible", timeout: 2000 });
    assert.ok(await region.getByRole("heading", { name: "If you are in danger right now" }).isVisible());
    const en = stack.catalogue.languages.find((l) => l.tag === "en").crisisResources;
    for (const r of en) {
      assert.ok(await region.getByText(r.name, { exact: true }).isVisible(), `${r.name} is shown`);
      if (r.phone) assert.ok(await region.getByRole("link", { name: r.phone }).isVisible(), `${r.phone} can be called`);
    }
    assert.deepEqual(sockets, [], "the resources come from the catalogue, before any request");

    // they follow the language
    await crisis.getByLabel("Language").selectOption("de");
    const de = stack.catalogue.languages.find((l) => l.tag === "de").crisisResources;
    await region.getByText(de[1].name, { exact: true }).waitFor({ timeout: 2000 });
    assert.equal(await region.getByText(en[1].name, { exact: true }).count(), 0);
    await crisis.getByLabel("Language").selectOption("en");
    await region.getByText(en[0].name, { exact: true }).waitFor({ timeout: 2000 });

    // the crisis request goes to the front of the line
    await crisis.getByRole("button", { name: "Talk to someone" }).click();
    await crisis.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });
    const waitingRegion = crisis.getByRole("region", { name: "If you are in danger right now" }).filter({ visible: true });
    await waitingRegion.getByText(en[0].name, { exact: true }).waitFor({ timeout: T });
    await calm.getByRole("status").filter({ hasText: "You are number 2 in line" }).waitFor({ timeout: T });

    // the first offer is the crisis request
    const desk = await stack.open("/listener.html");
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    const offer = desk.getByRole("region", { name: "New chat request" });
    await offer.waitFor({ timeout: T });
    assert.equal(await offer.count(), 1, "one chat at a time: one offer");
    assert.match(await offer.innerText(), /in crisis/);
    await offer.getByRole("button", { name: "Accept" }).click();
    await crisis.getByRole("textbox", { name: "Message" }).waitFor({ timeout: T });
    // the calm seeker is now first and still waiting
    await calm.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });
    assert.equal(await calm.getByRole("textbox", { name: "Message" }).count(), 0);
    assert.equal(await stack.redis("ZCARD", "wl:q:anxiety:en"), "1");
    await until(async () => (await desk.getByRole("tab").count()) === 1, T, "the listener's chat tab");
    assert.deepEqual(stack.pageErrors, []);
    await context.close();
  });
});

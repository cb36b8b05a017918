// Crisis lines by region, not only by language: the seeker page suggests where the person is from
// the browser's locale (en-GB: the United Kingdom) among the regions the language lists, shows
// that region's lines in "Need urgent help?" and when "I am in crisis now" is ticked, lets them
// change it, and sends it with the request so the server's lines match.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, askForChat } from "../flows.mjs";

describe("crisis lines by region", () => {
  const suite = withStack();

  it("follow the browser's region, change with the choice, and go with the request", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await stack.open("/", { locale: "en-GB" });
    const frames = [];
    seeker.on("websocket", (ws) => ws.on("framesent", (f) => frames.push(String(f.payload))));
    const region = seeker.getByLabel("Where are you?");
    await until(async () => (await region.inputValue()) === "GB", T, "the region suggested from en-GB");
    await seeker.getByText("Need urgent help?", { exact: true }).click();
    const urgent = seeker.locator("#urgent-resources");
    await urgent.getByText("Samaritans").waitFor({ timeout: T });
    assert.match(await urgent.innerText(), /116 123/);
    assert.doesNotMatch(await urgent.innerText(), /\b112\b/);

    await region.selectOption("US");
    await urgent.getByText("988 Suicide & Crisis Lifeline").waitFor({ timeout: T });
    // somewhere the catalogue does not list: the language's general lines
    await region.selectOption("");
    await urgent.getByText("Befrienders Worldwide").waitFor({ timeout: T });

    await region.selectOption("US");
    await seeker.getByLabel("I am in crisis now").check();
    await seeker.locator("#crisis-resources").getByText("988 Suicide & Crisis Lifeline").waitFor({ timeout: T });
    await askForChat(seeker, { topic: "grief" });
    await until(() => frames.some((f) => f.includes('"requestChat"')), T, "the request");
    const request = JSON.parse(frames.find((f) => f.includes('"requestChat"'))).requestChat;
    assert.equal(request.region, "US");
    // the waiting screen shows the lines the server sent for that region
    await seeker.locator("#waiting-crisis").getByText("988 Suicide & Crisis Lifeline").waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
  });
});

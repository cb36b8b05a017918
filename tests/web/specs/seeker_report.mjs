// Message text leaves the two browsers only in a report, and only the messages the seeker ticked:
// every frame both pages send to the matchmaker and the relay is recorded, and no plaintext shows
// up in any of them except the ticked messages inside the one reportChat frame.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;

function record(page, frames) {
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => frames.push({ url: ws.url(), payload: String(f.payload) }));
  });
}

describe("reporting a chat", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Max", topics: ["relationships"], languages: ["en"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("sends only the ticked messages, and no plaintext ever goes anywhere else", { timeout: 90000 }, async () => {
    const frames = [];
    const browser = await stack.browser();
    const seeker = await (await browser.newContext()).newPage();
    const desk = await (await browser.newContext()).newPage();
    record(seeker, frames);
    record(desk, frames);
    await desk.goto(new URL("/listener.html", stack.webUrl).href);
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    await seeker.goto(stack.webUrl);
    await seeker.getByLabel("Topic").selectOption("relationships");
    await seeker.getByRole("button", { name: "Talk to someone" }).click();
    await desk.getByRole("region", { name: "New chat request" }).getByRole("button", { name: "Accept" }).click();

    const texts = {
      s1: "My partner keeps reading my phone.",
      l1: "That sounds really stressful. How do you feel about it?",
      s2: "Trapped, honestly.",
      l2: "You are not alone in this. ",
    };
    const sBox = seeker.getByRole("textbox", { name: "Message" });
    const lBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });
    await sBox.fill(texts.s1); await sBox.press("Enter");
    await desk.locator(".msg").filter({ hasText: texts.s1 }).waitFor({ timeout: T });
    await lBox.fill(texts.l1); await lBox.press("Enter");
    await seeker.locator(".msg").filter({ hasText: texts.l1 }).waitFor({ timeout: T });
    await sBox.fill(texts.s2); await sBox.press("Enter");
    await desk.locator(".msg").filter({ hasText: texts.s2 }).waitFor({ timeout: T });
    await lBox.fill(texts.l2); await lBox.press("Enter");
    await seeker.locator(".msg").filter({ hasText: texts.l2.trim() }).waitFor({ timeout: T });
    await seeker.getByRole("button", { name: "End chat" }).click();
    await seeker.getByRole("button", { name: "Yes, end the chat" }).click();
    await seeker.getByRole("heading", { name: "The chat has ended" }).waitFor({ timeout: T });

    // during the whole chat, no frame carried any plaintext
    const words = ["partner", "stressful", "Trapped", "not alone"];
    for (const f of frames) for (const w of words) assert.ok(!f.payload.includes(w), `"${w}" left a browser in ${f.url}`);

    // the report: each message has a checkbox labelled with its text, and the page says plainly
    // that this is the only time text leaves the browsers
    await seeker.getByRole("button", { name: "Report a problem" }).click();
    await seeker.getByText("This is the only time any message text leaves the two browsers.").waitFor({ timeout: T });
    for (const t of Object.values(texts)) assert.equal(await seeker.getByRole("checkbox", { name: t.trim(), exact: true }).count(), 1);
    await seeker.getByRole("checkbox", { name: texts.l1, exact: true }).check();
    await seeker.getByRole("checkbox", { name: texts.s2, exact: true }).check();
    await seeker.getByLabel("What happened?").fill("The listener was kind; I am testing the report.");
    await seeker.getByRole("button", { name: "Send report" }).click();

    await until(() => frames.some((f) => f.payload.includes('"reportChat"')), T, "the report frame");
    const reportFrames = frames.filter((f) => f.payload.includes('"reportChat"'));
    assert.equal(reportFrames.length, 1, "one report frame");
    const report = JSON.parse(reportFrames[0].payload).reportChat;
    assert.equal(report.reason, "The listener was kind; I am testing the report.");
    assert.deepEqual(report.messages.map((m) => [m.from, m.seq, m.text]), [["LISTENER", "1", texts.l1], ["SEEKER", "2", texts.s2]]);
    for (const m of report.messages) assert.match(m.sentUnixMs, /^\d{13}$/);
    assert.ok(reportFrames[0].url.endsWith("/v1/ws"), "the report goes to the matchmaker");
    // nothing else ever carried text
    for (const f of frames.filter((x) => x !== reportFrames[0])) {
      for (const w of words) assert.ok(!f.payload.includes(w), `"${w}" left a browser outside the report`);
    }
    // unticked messages stayed in the browser
    assert.ok(!reportFrames[0].payload.includes("partner") && !reportFrames[0].payload.includes("not alone"));

    // needs the matchmaker's reportChat (protocol addition): the seeker is thanked
    await seeker.getByText("Thank you. Your report was sent.").waitFor({ timeout: T });
    assert.deepEqual(stack.pageErrors, []);
  });
});

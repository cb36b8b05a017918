// Message text leaves the two browsers only in a report, and only the messages the seeker ticked:
// every frame both pages send to the matchmaker and the relay is recorded, and no plaintext shows
// up in any of them except the ticked messages inside the one reportChat frame.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, availableListener, askForChat, acceptOffer, say, waitForMessage, endChat } from "../flows.mjs";

function record(page, frames) {
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => frames.push({ url: ws.url(), payload: String(f.payload) }));
  });
}

describe("reporting a chat", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Max", topics: ["relationships"], languages: ["en"] }),
  }));

  it("sends only the ticked messages, and no plaintext ever goes anywhere else", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const frames = [];
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    record(seeker, frames);
    record(desk, frames);
    await availableListener(stack, listener, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "relationships" });
    await acceptOffer(desk);

    const texts = {
      s1: "My partner keeps reading my phone.",
      l1: "That sounds really stressful. How do you feel about it?",
      s2: "Trapped, honestly.",
      l2: "You are not alone in this. ",
    };
    // each message reaches the other side before the next is written, so the seqs are known
    await say(seeker, texts.s1);
    await waitForMessage(desk, texts.s1, "them");
    await say(desk, texts.l1);
    await waitForMessage(seeker, texts.l1, "them");
    await say(seeker, texts.s2);
    await waitForMessage(desk, texts.s2, "them");
    await say(desk, texts.l2);
    await waitForMessage(seeker, texts.l2.trim(), "them");
    await endChat(seeker);
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

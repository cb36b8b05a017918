// "I need support": the listener asks from their desk, every supervisor's dashboard shows who is
// asking (never what was said), one supervisor answers, and the two talk in a side chat whose
// words never leave the two browsers in the clear; either side ends it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, blankPage, visit, signInListener, signInSupervisor, axeViolations } from "../flows.mjs";

function record(page, frames) {
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => frames.push(String(f.payload)));
    ws.on("framereceived", (f) => frames.push(String(f.payload)));
  });
}

describe("a listener asks for support", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Jo", topics: ["grief"], languages: ["en"] }),
    ana: await stack.createSupervisor({ name: "Ana" }),
    ben: await stack.createSupervisor({ name: "Ben" }),
  }));

  it("alerts every supervisor, one answers, and the side chat is sealed end to end", { timeout: 90000 }, async () => {
    const { stack, listener, ana, ben } = suite;
    const frames = [];
    const desk = await blankPage(stack);
    const dashA = await blankPage(stack);
    const dashB = await blankPage(stack);
    for (const p of [desk, dashA, dashB]) record(p, frames);
    await visit(stack, dashA, "/supervisor.html");
    await signInSupervisor(dashA, ana.token);
    await visit(stack, dashB, "/supervisor.html");
    await signInSupervisor(dashB, ben.token);
    await visit(stack, desk, "/listener.html");
    await signInListener(desk, listener.token, "Jo");

    await desk.getByRole("button", { name: "I need support" }).click();
    await desk.getByText("A supervisor has been asked to join you. You can keep chatting meanwhile.").waitFor({ timeout: T });
    for (const dash of [dashA, dashB]) {
      await dash.getByRole("heading", { name: "Listeners asking for support" }).waitFor({ timeout: T });
      await dash.getByText(/^Jo asked for support at .* \(0 chats open\)\.$/).waitFor({ timeout: T });
    }
    await dashA.getByRole("button", { name: "Talk with them" }).click();
    await dashA.getByText("You're talking with Jo. Only the two of you can read this.").waitFor({ timeout: T });
    await desk.getByText("Ana is here. Only the two of you can read this.").waitFor({ timeout: T });
    await dashB.getByText("Ana is with Jo.").waitFor({ timeout: T });
    assert.equal(await dashB.getByRole("button", { name: "Talk with them" }).count(), 0);

    const words = { l: "That last chat shook me badly.", s: "I'm here. Take a breath with me." };
    await desk.getByLabel("Message").fill(words.l);
    await desk.getByRole("button", { name: "Send" }).click();
    await dashA.getByRole("log").getByText(words.l).waitFor({ timeout: T });
    await dashA.getByLabel("Message").fill(words.s);
    await dashA.getByRole("button", { name: "Send" }).click();
    await desk.getByRole("log").getByText(words.s).waitFor({ timeout: T });
    // never in the clear on any socket of any page, and Ben's dashboard never had it
    for (const f of frames) for (const w of ["shook me", "Take a breath"]) assert.ok(!f.includes(w), `"${w}" crossed a socket`);
    assert.equal(await dashB.getByText(words.l).count(), 0);
    assert.deepEqual(await axeViolations(desk), []);
    assert.deepEqual(await axeViolations(dashA), []);

    await dashA.getByRole("button", { name: "End support chat" }).click();
    await desk.getByText("The other side ended this support chat.").waitFor({ timeout: T });
    await desk.getByRole("button", { name: "I need support" }).waitFor({ timeout: T });
    await dashB.getByRole("heading", { name: "Listeners asking for support" }).waitFor({ state: "hidden", timeout: T });
    assert.deepEqual(stack.pageErrors, []);
  });
});

// The safety team's review queue on the dashboard: a report waits there with its count, its
// words are marked unverified, and a supervisor suspends the report's listener pending review
// (the desk says so and Available is refused), then lifts it; every step is audited.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, availableListener, askForChat, acceptOffer, say, waitForMessage, signInSupervisor, availableSwitch, isOn, axeViolations,
         reportFromDesk } from "../flows.mjs";

describe("the review queue", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Kit", topics: ["work"], languages: ["en"] }),
    supervisor: await stack.createSupervisor({ name: "Rosa" }),
  }));

  it("shows a report and lets a supervisor suspend its listener, then lift it", { timeout: 90000 }, async () => {
    const { stack, listener, supervisor } = suite;
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    await availableListener(stack, listener, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "work" });
    await acceptOffer(desk);
    await say(seeker, "You are useless.");
    await waitForMessage(desk, "You are useless.", "them");
    await reportFromDesk(desk, { tick: "You are useless.", reason: "Insults from the start." });
    await desk.getByText("Thank you. Your report was sent to the safety team.").waitFor({ timeout: T });

    const dash = await blankPage(stack);
    await visit(stack, dash, "/supervisor.html");
    await signInSupervisor(dash, supervisor.token);
    await dash.getByText("1 report is waiting for review.").waitFor({ timeout: T });
    await dash.getByRole("button", { name: "Open the review queue" }).click();
    const card = dash.getByRole("article", { name: "Reported by the listener" });
    await card.waitFor({ timeout: T });
    const text = await card.innerText();
    assert.match(text, /Insults from the start\./);
    assert.match(text, /Unverified: these are the reporter's own copy/);
    assert.match(text, /Seeker:\s+You are useless\./);
    assert.match(text, /Kit/);
    assert.deepEqual(await axeViolations(dash), []);

    await card.getByRole("button", { name: "Suspend the listener pending review" }).click();
    await card.getByText("Kit (suspended)").waitFor({ timeout: T });
    await card.getByText("Action taken", { exact: true }).first().waitFor({ timeout: T });
    await desk.getByText(/^Your account is paused pending a review by the safety team, so you won't get requests/).waitFor({ timeout: T });
    await until(async () => !(await isOn(availableSwitch(desk))), T, "the desk to show away");
    await availableSwitch(desk).click();
    await desk.getByText("Your account is paused pending a review by the safety team. They will be in touch.").first().waitFor({ timeout: T });
    assert.equal(await isOn(availableSwitch(desk)), false);
    // the seeker was handed on: back at the front of the line
    await seeker.getByText(/You're back at the front of the line/).first().waitFor({ timeout: T });
    await dash.getByText("No reports are waiting.").waitFor({ timeout: T });

    await card.getByRole("button", { name: "Lift the suspension" }).click();
    await card.getByText("Kit", { exact: true }).waitFor({ timeout: T });
    await availableSwitch(desk).click();
    await until(() => isOn(availableSwitch(desk)), T, "Available to switch on after the suspension is lifted");
    const audit = await stack.redis("XRANGE", "wl:audit", "-", "+");
    for (const e of ["reports_list", "listener_suspend", "listener_reinstate"]) assert.match(audit, new RegExp(e));
    assert.ok(!audit.includes("useless"), "no report words in the audit stream");
    assert.deepEqual(stack.pageErrors, []);
  });
});

// When no listener who is free right now may take a request (the only one who covers it declined,
// or nobody covers it at all), the seeker is told so plainly: no estimate, the place kept, and the
// crisis lines, crisis or not. The dashboard counts the pair as "can't be served now" and names it
// in a call-out, and a crisis request nobody took in time in a louder one. After the (short)
// decline cool-down the listener is offered the seeker again, and every one of these clears.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, askForChat, waitInLine, availableListener, offerOn, acceptAndChat, say, waitForMessage,
         signInSupervisor, axeViolations, crisisLines } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

const COOLDOWN_MS = 6000;
const CRISIS_WIDEN_MS = 2000;
const PAIR = "Anxiety and stress · English";
const NOBODY_FREE = "No listener who covers this is free right now. You keep your place, and we'll connect you as soon as someone is.";
const ESTIMATE = /Estimated wait|estimate the wait/;

// Each cell of a table row as the eye reads it (what only a screen reader gets left out), the row
// header first.
async function cells(row) {
  return row.locator("th, td").evaluateAll((els) => els.map((el) => {
    const copy = el.cloneNode(true);
    for (const hidden of copy.querySelectorAll(".visually-hidden")) hidden.remove();
    return copy.textContent.trim();
  }));
}
const UNSERVABLE = 2;     // the "Can't be served now" column
const CRISIS_CHATS = 7;
const CRISIS_P50 = 8;

describe("nobody free for a request right now", () => {
  const suite = withStack({
    matchmakerFlags: [`--decline-cooldown-ms=${COOLDOWN_MS}`, `--crisis-widen-ms=${CRISIS_WIDEN_MS}`],
  }, async (stack) => ({
    ana: await stack.createListener({ name: "Ana", topics: ["anxiety"], languages: ["en"], maxChats: 1 }),
    supervisor: await stack.createSupervisor({ name: "Robin" }),
  }));

  it("a crisis request the only listener declined: told plainly, on the dashboard, offered again after the cool-down",
     { timeout: 60000 }, async () => {
    const { stack, ana, supervisor } = suite;
    const dashboard = await stack.open("/supervisor.html", { viewport: { width: 1400, height: 1000 } });
    await signInSupervisor(dashboard, supervisor.token);
    const table = dashboard.getByRole("table", { name: "Queues right now" });
    await table.waitFor({ timeout: T });
    const row = table.getByRole("row", { name: new RegExp(`^${PAIR}`) });
    const unservable = dashboard.getByRole("alert", { name: "Seekers waiting with no listener" });
    const overdue = dashboard.getByRole("alert", { name: "Crisis requests nobody has taken" });

    const desk = await availableListener(stack, ana, { name: "Ana" });
    const seeker = await stack.open("/");
    await seeker.getByRole("checkbox", { name: "I am in crisis now" }).check();
    await askForChat(seeker, { topic: "anxiety", language: "en" });
    const offer = offerOn(desk);
    await offer.waitFor({ timeout: T });
    assert.match(await offer.innerText(), /in crisis/);
    await offer.getByRole("button", { name: "Decline" }).click();

    // The seeker: the plain truth, the place kept, the crisis lines, and no estimate.
    const queue = seeker.locator("#queue-status");
    await queue.getByText(NOBODY_FREE).waitFor({ timeout: T });
    assert.equal(await queue.getAttribute("role"), "status");
    await waitInLine(seeker, 1);
    assert.doesNotMatch(await queue.innerText(), ESTIMATE);
    const lines = seeker.getByRole("region", { name: "If you are in danger right now" }).filter({ visible: true });
    for (const r of crisisLines(stack, "en")) {
      await lines.getByText(r.name, { exact: true }).waitFor({ timeout: T });
    }

    // The dashboard: counted as can't be served, named in the call-out; then, once the crisis
    // request has waited past the widening, named in the louder call-out too.
    await until(async () => (await cells(row))[UNSERVABLE] === "1", T, "the pair to count one seeker who can't be served");
    await until(async () => (await unservable.getByRole("listitem").count()) === 1, T, "the can't-be-served call-out");
    assert.match(await unservable.getByRole("listitem").innerText(),
                 new RegExp(`^${PAIR}: 1 of 1 seeker waiting can't be served now; every available listener who takes this has declined or missed them, or was blocked$`));
    assert.match((await cells(row))[0], /Can't be served now/);
    await until(async () => (await overdue.getByRole("listitem").count()) === 1, T, "the crisis-overdue call-out");
    assert.match(await overdue.getByRole("listitem").innerText(),
                 new RegExp(`^${PAIR}: 1 crisis request waiting too long, now offered to every English listener$`));
    assert.match((await cells(row))[0], /Crisis overdue/);
    const total = table.locator("tfoot tr");
    assert.equal((await cells(total))[UNSERVABLE], "1", "All queues counts them too");
    assert.deepEqual(await axeViolations(dashboard), [], "axe-core with both call-outs");
    await stack.screenshot(dashboard, "dashboard-unservable");
    await stack.screenshot(seeker, "seeker-no-listener-now");

    // After the cool-down the same listener is offered the seeker again, and it all clears.
    await offer.waitFor({ timeout: COOLDOWN_MS + T });
    await until(async () => !(await queue.innerText()).includes(NOBODY_FREE), T, "the seeker's text to flip back");
    await acceptAndChat(seeker, desk);
    await say(seeker, "thank you for coming back");
    await waitForMessage(desk, "thank you for coming back", "them");
    await until(async () => (await unservable.count()) === 0 && (await overdue.count()) === 0, T, "both call-outs to clear");
    await until(async () => (await cells(row))[CRISIS_CHATS] === "1", T, "one crisis chat going on");
    await until(async () => /^\d+ s$/.test((await cells(row))[CRISIS_P50]), T, "the crisis wait's median");
    assert.equal((await cells(row))[UNSERVABLE], "0");
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
    await dashboard.context().close();
  });

  it("a request nobody covers, not in crisis: no estimate and the crisis lines, until a listener may take it",
     { timeout: 60000 }, async () => {
    const { stack } = suite;
    const seeker = await stack.open("/");
    assert.equal(await seeker.getByRole("checkbox", { name: "I am in crisis now" }).isChecked(), false);
    await askForChat(seeker, { topic: "grief", language: "de" });
    // the page speaks German, the language of the request
    const de = TABLES.de;
    const queue = seeker.locator("#queue-status");
    await queue.getByText(de["seeker.queue.noListener"]).waitFor({ timeout: T });
    assert.doesNotMatch(await queue.innerText(), /Geschätzte Wartezeit|Wartezeit gerade nicht schätzen/);
    const lines = seeker.getByRole("region", { name: de["seeker.crisis.title"] }).filter({ visible: true });
    for (const r of crisisLines(stack, "de")) {
      await lines.getByText(r.name, { exact: true }).waitFor({ timeout: T });
    }

    // A listener who covers it goes available: the seeker is offered to them, and the page no
    // longer says nobody is free, nor shows the crisis lines it was not asked for.
    const kim = await stack.createListener({ name: "Kim", topics: ["grief"], languages: ["de"] });
    const desk = await availableListener(stack, kim, { name: "Kim" });
    await offerOn(desk).waitFor({ timeout: T });
    await until(async () => !(await queue.innerText()).includes(de["seeker.queue.noListener"]), T, "the seeker's text to flip back");
    await until(async () => (await lines.count()) === 0, T, "the crisis lines to go when someone may take the request");
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
    await desk.context().close();
  });
});

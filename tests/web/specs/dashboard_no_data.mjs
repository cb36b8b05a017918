// A duration the dashboard has none of is a dash that a screen reader reads as "no data", never
// "0 s": the longest wait while nobody waits, and the wait percentiles while no chat has started in
// their 15 minutes (proto3 JSON leaves out a 0 either way). Counts keep their real zeros, and a
// real wait shows as soon as there is one, even one under a second ("0 s").
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, signInSupervisor, axeViolations } from "../flows.mjs";

const PAIR = "Anxiety and stress · English";
const DURATION = /^\d+ s$/;

// The text of each element as the eye reads it: without what only a screen reader gets.
async function shown(locator) {
  return locator.evaluateAll((els) => els.map((el) => {
    const copy = el.cloneNode(true);
    for (const hidden of copy.querySelectorAll(".visually-hidden")) hidden.remove();
    return copy.textContent.trim();
  }));
}

// Each cell of a table row as shown, the row header first.
async function cells(row) {
  return shown(row.locator("th, td"));
}

// Waiting, longest, p50 and p90 of a row as shown, and how many of its cells a screen reader
// hears as "no data" (the crisis waits' two are among them while no crisis request was served).
async function waits(row) {
  const c = await cells(row);
  const noData = await row.getByRole("cell", { name: "no data", exact: true }).count();
  return { waiting: c[1], longest: c[3], p50: c[4], p90: c[5], noData };
}

describe("the dashboard without data", () => {
  const suite = withStack({}, async (stack) => ({
    supervisor: await stack.createSupervisor({ name: "Robin Vale" }),
    listener: await stack.createListener({ name: "Quillon Marsh", topics: ["anxiety"], languages: ["en"] }),
  }));

  it("shows a dash read as 'no data' for durations there are none of, and real zeros for counts",
     { timeout: 60000 }, async () => {
    const { stack, supervisor, listener } = suite;
    const page = await stack.open("/supervisor.html", { viewport: { width: 1280, height: 1000 } });
    await signInSupervisor(page, supervisor.token);
    const table = page.getByRole("table", { name: "Queues right now" });
    await table.waitFor({ timeout: T });
    const row = table.getByRole("row", { name: new RegExp(`^${PAIR}`) });
    const total = table.locator("tfoot tr");
    const percentiles = page.getByRole("img", { name: /^Wait before a chat starts/ });
    const legend = page.locator("#chart-percentiles .legend");

    // Only an away listener: nobody waits and no chat has started.
    await until(async () => (await row.count()) === 1, T, "the away listener's pair in the table");
    const none = { waiting: "0", longest: "—", p50: "—", p90: "—", noData: 5 };
    assert.deepEqual(await waits(row), none, PAIR);
    const c = await cells(row);
    assert.deepEqual([c[2], ...c.slice(6, 8), ...c.slice(10)], ["0", "0", "0", "0", "0", "1", "0"], "counts of 0 stay 0");
    assert.deepEqual(c.slice(8, 10), ["—", "—"], "no crisis waits");
    assert.deepEqual(await waits(total), none, "All queues");
    assert.deepEqual(await shown(legend.getByRole("listitem")), ["Median (p50): —", "90th percentile (p90): —"]);
    const heard = await legend.ariaSnapshot();
    assert.match(heard, /listitem: "Median \(p50\): no data"/);
    assert.match(heard, /listitem: "90th percentile \(p90\): no data"/);
    assert.match(await percentiles.getAttribute("aria-label"), /Now: no chat has started in the last 15 minutes\./);
    assert.deepEqual(await axeViolations(page), [], "axe-core on the dashboard with no data");

    // A seeker waits: the longest wait is a duration (0 s is real now); still no percentiles.
    const seeker = stack.client(["seeker"]);
    await seeker.waitFor(/seekerWelcome/, T);
    seeker.send("request anxiety en");
    await seeker.waitFor(/"requestQueued"/, T);
    await until(async () => (await waits(row)).waiting === "1", T, "the table to count the waiting seeker");
    let w = await waits(row);
    assert.match(w.longest, DURATION);
    assert.deepEqual([w.p50, w.p90, w.noData], ["—", "—", 4]);
    assert.match((await waits(total)).longest, DURATION);

    // A listener accepts the seeker at once: the percentiles are real (likely "0 s"), the longest
    // wait has no one to time any more.
    const terminal = stack.client(["listener", "--token", listener.token]);
    await terminal.waitFor(/"listenerId"/, T);
    terminal.send("available");
    const offer = (await terminal.waitFor(/"offer":\{[^}]*"offerId":"([^"]+)"/, T))[1];
    terminal.send(`accept ${offer}`);
    await until(async () => (await waits(row)).waiting === "0", T, "the table to see the chat start");
    await until(async () => DURATION.test((await waits(row)).p50), T, "the pair's median wait");
    w = await waits(row);
    assert.equal(w.longest, "—");
    assert.match(w.p90, DURATION);
    assert.equal(w.noData, 3, "only the longest wait (and the crisis waits: nobody in crisis) have no data");
    await until(async () => DURATION.test((await waits(total)).p50), T, "the median wait of all queues");
    assert.match(await percentiles.getAttribute("aria-label"), /Now: median \d+ s, 90th percentile \d+ s\./);
    assert.match((await shown(legend.getByRole("listitem")))[0], /^Median \(p50\): \d+ s$/);
    assert.deepEqual(stack.pageErrors, []);
    await terminal.stop();
    await seeker.stop();
    await page.context().close();
  });
});

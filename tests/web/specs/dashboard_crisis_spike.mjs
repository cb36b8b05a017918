// The supervisor dashboard's crisis spike alert against a real stack: with the matchmaker's
// --crisis-alert-per-5min at 2, a first crisis request raises nothing, a second one raises the
// call-out with the counts (and no one's id), and the page reads it out as an alert.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { withStack, signInSupervisor as signIn } from "../flows.mjs";

const SPIKE = "Crisis requests are spiking";

describe("supervisor dashboard: crisis spike", () => {
  const suite = withStack({ matchmakerFlags: ["--crisis-alert-per-5min=2", "--crisis-alert-factor=3"] });

  it("alerts once crisis requests reach the minimum with a quiet hour before them", { timeout: 60000 }, async () => {
    const { stack } = suite;
    const supervisor = await stack.createSupervisor({ name: "Robin Vale" });
    const page = await stack.open("/supervisor.html", { viewport: { width: 1280, height: 1000 } });
    await signIn(page, supervisor.token);
    await page.getByRole("table", { name: "Queues right now" }).waitFor({ timeout: 10000 });

    const ids = [];
    const crisisRequest = async () => {
      const seeker = stack.client(["seeker"]);
      ids.push((await seeker.waitFor(/"seekerId":"([0-9a-f]+)"/, 10000))[1]);
      seeker.send("request grief en crisis");
      await seeker.waitFor(/"requestQueued"/, 10000);
    };
    await crisisRequest();
    // the table has counted it, and still no alert
    const total = page.locator("tfoot tr td");
    await until(async () => (await total.first().innerText()) === "1", 10000, "the table to count the request");
    assert.equal(await page.getByRole("heading", { name: SPIKE }).count(), 0);

    await crisisRequest();
    const alert = page.getByRole("alert", { name: SPIKE });
    await until(async () => (await alert.count()) === 1, 10000, "the spike call-out");
    assert.match(await alert.innerText(), /2 crisis requests in the last 5 minutes; usually about 0\./);
    const html = await page.content();
    for (const id of ids) assert.ok(!html.includes(id), "no seeker id reaches the page");
  });
});

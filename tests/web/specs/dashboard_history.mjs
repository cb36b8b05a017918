// The dashboard's last hour comes from the matchmaker, not from how long the page has been open:
// the matchmaker keeps a stats sample every step in Redis (here every second, the flag's minimum)
// and sends the last hour with the reply to the sign-in. A seeker waits, and gives up, before the
// supervisor signs in, so only a page that drew that history can show that anyone waited; a
// reload gets the hour again.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, signInSupervisor } from "../flows.mjs";

const STEP_S = 1;
const BUCKET_MS = 10_000;  // the dashboard draws the highest value of each 10 s

// The times (Unix ms) of the samples Redis holds; the samples themselves are binary.
async function sampleTimes(stack) {
  const out = await stack.redis("EVAL", "local r = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') " +
                                "local t = {} for i = 2, #r, 2 do t[#t + 1] = r[i] end return t", "1", "wl:stats:history");
  return out.split("\n").filter(Boolean).map(Number);
}

// What the charts say about the seeker who waited before the sign-in (nobody waits now). `drawnAtLeast`:
// the 10 s buckets the samples in Redis fall in, each a point of the queue-depth line.
async function expectHourDrawn(page, drawnAtLeast, what) {
  const depth = page.getByRole("img", { name: /^Seekers waiting per topic and language/ });
  await until(async () => /Peak: 1 waiting in all\./.test(await depth.getAttribute("aria-label")), T,
              `${what}: the queue-depth chart to give the peak of the hour`);
  assert.match(await depth.getAttribute("aria-label"), /Now: no one is waiting\./, what);
  const points = Number(await depth.getAttribute("data-points"));
  assert.ok(points >= drawnAtLeast, `${what}: the queue-depth line goes through ${points} points, not ${drawnAtLeast} or more`);
  const legend = await page.locator("#chart-depth .legend li").allInnerTexts();
  assert.deepEqual(legend, ["Grief and loss · English: 0 now"], `${what}: the legend names the pair that had someone waiting`);
  const longest = await page.getByRole("img", { name: /^Longest current wait/ }).getAttribute("aria-label");
  assert.match(longest, /Now: no one is waiting\./, what);
  const highest = Number(longest.match(/Highest: (\d+) s\./)?.[1] ?? 0);
  assert.ok(highest >= 1, `${what}: the longest wait of the hour is drawn (${longest})`);
}

describe("the dashboard's last hour", () => {
  const suite = withStack({ matchmakerFlags: [`--stats-history-step-s=${STEP_S}`] }, async (stack) => ({
    supervisor: await stack.createSupervisor({ name: "Robin Vale" }),
  }));

  it("is drawn from the history the sign-in brings, and again after a reload", { timeout: 60000 }, async () => {
    const { stack, supervisor } = suite;
    const samples = async () => Number(await stack.redis("ZCARD", "wl:stats:history"));

    // A seeker waits for grief · English, with no listener, while several samples are taken; then
    // they give up, before any supervisor looks.
    const seeker = stack.client(["seeker"]);
    await seeker.waitFor(/seekerWelcome/, T);
    seeker.send("request grief en");
    await seeker.waitFor(/"requestQueued"/, T);
    const queued = await samples();
    await until(async () => (await samples()) >= queued + 4, T, "four samples taken while the seeker waits");
    const from = seeker.output().length;
    seeker.send("cancel");
    await seeker.waitFor(/"ok"/, T, from);
    assert.equal(await stack.redis("ZCARD", "wl:q:grief:en"), "0", "nobody waits any more");
    await seeker.stop();

    const buckets = (times) => new Set(times.map((t) => Math.floor(t / BUCKET_MS))).size;
    const before = await sampleTimes(stack);
    assert.ok(before.length >= queued + 4, `Redis holds ${before.length} samples`);

    const page = await stack.open("/supervisor.html", { viewport: { width: 1280, height: 1000 } });
    await signInSupervisor(page, supervisor.token);
    const table = page.getByRole("table", { name: "Queues right now" });
    await table.waitFor({ timeout: T });
    assert.equal(await page.getByRole("alert", { name: "Seekers waiting with no listener" }).count(), 0,
                 "no shortage now");
    await expectHourDrawn(page, buckets(before), "after the sign-in");
    await stack.screenshot(page, "dashboard-history");

    // A reload signs in again, and the hour comes with it again.
    const again = await sampleTimes(stack);
    await page.reload();
    await table.waitFor({ timeout: T });
    await expectHourDrawn(page, buckets(again), "after a reload");
    assert.deepEqual(stack.pageErrors, []);
    await page.context().close();
  });
});

// The supervisor dashboard against a real stack: a waiting seeker shows in "Queues right now" and in
// the shortage call-out for its topic · language only; a trained listener going available clears
// the call-out live; the sign-in is audited; no seeker or listener id, name or handle ever reaches
// the page. Then the sign-in's edges: a wrong token, a reload, signing out and a revocation (4003).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { withStack, signInSupervisor as signIn } from "../flows.mjs";

const SHORTAGE = "Seekers waiting with no listener";
const PAIR = "Anxiety and stress · English";

async function auditLength(stack) {
  return Number(await stack.redis("XLEN", "wl:audit"));
}

// The text of each cell of a table row, the row header first.
async function rowTexts(row) {
  return row.locator("th, td").allInnerTexts();
}

describe("supervisor dashboard", () => {
  const suite = withStack();

  it("shows a waiting seeker and the shortage, and clears it when a trained listener goes available",
     { timeout: 90000 }, async () => {
    const { stack } = suite;
    const supervisor = await stack.createSupervisor({ name: "Robin Vale" });
    const listener = await stack.createListener({ name: "Quillon Marsh", handle: "quillon-m",
                                                  topics: ["anxiety"], languages: ["en"], maxChats: 2 });
    const page = await stack.open("/supervisor.html", { viewport: { width: 1280, height: 1000 } });

    const audited = await auditLength(stack);
    await signIn(page, supervisor.token);
    const table = page.getByRole("table", { name: "Queues right now" });
    await table.waitFor({ timeout: 10000 });
    await until(async () => (await auditLength(stack)) > audited, 10000, "the sign-in to be audited");
    const entry = await stack.redis("XREVRANGE", "wl:audit", "+", "-", "COUNT", "1");
    assert.match(entry, /supervisor_sign_in/);
    assert.ok(entry.includes(supervisor.id), "the audit entry names the supervisor");

    // Before anyone waits: the away listener's pair is listed, with no call-out.
    const row = table.getByRole("row", { name: new RegExp(`^${PAIR}`) });
    await until(async () => (await row.count()) === 1, 10000, "the listener's pair in the table");
    assert.equal(await page.getByRole("heading", { name: SHORTAGE }).count(), 0);

    // A seeker asks for anxiety · en and waits: the row counts them and the call-out names the pair.
    const seeker = stack.client(["seeker"]);
    const seekerId = (await seeker.waitFor(/"seekerId":"([0-9a-f]+)"/, 10000))[1];
    seeker.send("request anxiety en");
    await seeker.waitFor(/"requestQueued"/, 10000);
    await until(async () => (await rowTexts(row))[1] === "1", 10000, "the table to count one waiting seeker");
    const alert = page.getByRole("alert", { name: SHORTAGE });
    await until(async () => (await alert.count()) === 1, 10000, "the shortage call-out");
    const items = await alert.getByRole("listitem").allInnerTexts();
    assert.equal(items.length, 1, `one pair is short: ${JSON.stringify(items)}`);
    assert.match(items[0], new RegExp(`^${PAIR}: 1 seeker waiting, the longest for under a minute$`));
    assert.match((await rowTexts(row))[0], /No listener/);

    // Only pairs with someone in them get a row: anxiety · en, and the total.
    const bodyRows = await table.locator("tbody tr").allInnerTexts();
    assert.equal(bodyRows.length, 1, `rows: ${JSON.stringify(bodyRows)}`);
    const total = await rowTexts(table.locator("tfoot tr"));
    assert.equal(total[0], "All queues");
    assert.equal(total[1], "1");
    assert.equal(total[12], "1", "one listener away in all");

    // The queue-depth chart says what it shows now.
    await until(async () => (await page.getByRole("img", { name: new RegExp(`Now: ${PAIR} 1\\.`) }).count()) === 1,
                10000, "the queue-depth chart's label to give the waiting seeker");
    await stack.screenshot(page, "dashboard");

    // The listener signs in and goes available: the seeker is offered to them and the call-out clears.
    const terminal = stack.client(["listener", "--token", listener.token]);
    const listenerId = (await terminal.waitFor(/"listenerId":"([0-9a-f]+)"/, 10000))[1];
    assert.equal(listenerId, listener.id);
    terminal.send("available");
    await terminal.waitFor(/"offer":\{[^}]*"topic":"anxiety","language":"en"/, 10000);
    await until(async () => (await page.getByRole("heading", { name: SHORTAGE }).count()) === 0, 10000,
                "the call-out to clear");
    assert.equal(await page.getByRole("alert", { name: SHORTAGE }).count(), 0);
    await until(async () => {
      const cells = await rowTexts(row);
      return cells[1] === "1" && cells[10] === "1" && !/No listener/.test(cells[0]);
    }, 10000, "the row to show the waiting (offered) seeker and one available listener");

    // Counts and durations only: no id, name or handle of a seeker or listener anywhere in the page.
    const html = await page.content();
    const text = await page.evaluate(() => document.body.innerText);
    for (const secret of [seekerId, listener.id, listener.handle, "Quillon", supervisor.token]) {
      assert.ok(!html.includes(secret) && !text.includes(secret), "the page shows an id, name, handle or token");
    }
    assert.deepEqual(stack.pageErrors, []);
    await terminal.stop();
    await seeker.stop();
    await page.context().close();
  });

  it("keeps a wrong token on the form, signs in again after a reload, signs out, and stops on revocation",
     { timeout: 90000 }, async () => {
    const { stack } = suite;
    const supervisor = await stack.createSupervisor({ name: "Ash Lindqvist" });
    const page = await stack.open("/supervisor.html", { viewport: { width: 360, height: 740 }, colorScheme: "dark" });
    const table = page.getByRole("table", { name: "Queues right now" });
    const token = page.getByLabel("Supervisor token");
    const stored = () => page.evaluate(() => Object.values(sessionStorage).some((v) => v.startsWith("wls_")));

    await signIn(page, "wls_" + "x".repeat(43));
    await page.getByText("That supervisor token was not accepted").waitFor({ timeout: 10000 });
    assert.ok(await token.isVisible(), "the form stays");
    assert.equal(await table.isVisible(), false);
    assert.equal(await stored(), false, "a refused token is not kept");

    await signIn(page, supervisor.token);
    await table.waitFor({ timeout: 10000 });
    assert.equal(await stored(), true);

    // A reload signs in again by itself (and is audited again).
    const audited = await auditLength(stack);
    await page.reload();
    await table.waitFor({ timeout: 10000 });
    await until(async () => (await auditLength(stack)) > audited, 10000, "the second sign-in to be audited");
    assert.equal(await token.isVisible(), false);

    // Sign out forgets the token: a reload shows the form.
    await page.getByRole("button", { name: "Sign out" }).click();
    await token.waitFor({ timeout: 10000 });
    assert.equal(await stored(), false);
    await page.reload();
    await token.waitFor({ timeout: 10000 });
    assert.equal(await table.isVisible(), false);

    // Revocation closes the feed with 4003: the page says so, forgets the token and shows the form.
    await signIn(page, supervisor.token);
    await table.waitFor({ timeout: 10000 });
    await stack.admin("revoke", supervisor.id);
    await page.getByText("This supervisor account has been revoked").waitFor({ timeout: 10000 });
    assert.ok(await token.isVisible());
    assert.equal(await table.isVisible(), false);
    assert.equal(await stored(), false);
    assert.deepEqual(stack.pageErrors, []);
    await page.context().close();
  });
});

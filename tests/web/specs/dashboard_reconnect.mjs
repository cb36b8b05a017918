// The dashboard keeps its feed alive by itself (js/supervisor.js on js/matchmaker.js): a dropped
// connection is opened again after a backoff and signs in again; a sign-in the matchmaker could
// not check just then (UNAVAILABLE) is tried again, and the page says why; a feed that goes
// silent for 10 s is given up and opened again. The dashboard stays on screen throughout.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, routeSockets, signInSupervisor } from "../flows.mjs";

const STALE_MS = 10_000;

describe("the dashboard's connection", () => {
  const suite = withStack({}, async (stack) => ({
    supervisor: await stack.createSupervisor({ name: "Kit Oduya" }),
  }));

  it("comes back after a drop, an unavailable sign-in and a silent feed", { timeout: 60000 }, async () => {
    const { stack, supervisor } = suite;
    const page = await blankPage(stack);
    // The matchmaker's socket goes through the test: it counts sign-ins, can answer the next one
    // with UNAVAILABLE itself, and can keep one socket's pushes from the page.
    const feed = { signIns: 0, unavailableNext: false, muted: null };
    const sockets = await routeSockets(page, "/v1/ws", {
      fromPage: (m, forward, ws) => {
        const msg = JSON.parse(String(m));
        if (msg.supervisorSignIn) feed.signIns += 1;
        if (!msg.supervisorSignIn || !feed.unavailableNext) return forward();
        feed.unavailableNext = false;
        ws.send(JSON.stringify({ requestId: msg.requestId,
                                 error: { code: "UNAVAILABLE", message: "Warmline can't reach its database for a moment." } }));
      },
      fromService: (m, forward, ws) => { if (ws !== feed.muted) forward(); },
    });
    await visit(stack, page, "/supervisor.html");
    await signInSupervisor(page, supervisor.token);
    const table = page.getByRole("table", { name: "Queues right now" });
    await table.waitFor({ timeout: T });
    const status = page.locator("#conn");
    const live = (signIns) => until(async () => feed.signIns === signIns && (await status.innerText()) === "Live", T,
                                    `sign-in ${signIns} to be live`);
    await live(1);

    // The connection drops; the next sign-in cannot be checked; the one after it goes through.
    feed.unavailableNext = true;
    sockets.at(-1).close({ code: 4000, reason: "network drop" });
    await until(async () => /^Warmline can't reach its database for a moment\. Connection lost\. Reconnecting in \d+ seconds?…$/
      .test(await status.innerText()), T, "the page to say why it tries again, and when");
    assert.ok(await table.isVisible(), "the dashboard stays while it reconnects");
    await live(3);
    assert.equal(sockets.length, 3, "one connection for each sign-in");

    // The feed goes silent without closing: after 10 s the page gives up on it and opens another.
    const mutedAt = Date.now();
    feed.muted = sockets.at(-1);
    await until(() => sockets.length === 4, STALE_MS + T, "a new connection after the feed went silent");
    const after = Date.now() - mutedAt;
    assert.ok(after >= STALE_MS - 1000, `the page waited ${after} ms for a snapshot before it gave up`);
    await live(4);
    assert.ok(await table.isVisible());
    assert.ok(await page.evaluate(() => Object.values(sessionStorage).some((v) => v.startsWith("wls_"))),
              "the token is kept through all of it");
    assert.deepEqual(stack.pageErrors, []);
    await page.context().close();
  });
});

// Redis stalls (SIGSTOP): the matchmaker and the relay tell their clients they are degraded, and
// every page says so politely instead of freezing: the waiting seeker keeps its place, the seeker
// in a chat keeps what it writes, the listener's desk shows a banner, the dashboard's live numbers
// are paused. Redis goes on (SIGCONT): every status clears, the message written meanwhile arrives,
// and matching works again. The services' Redis deadline is short (harness flags).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, waitingSeeker, waitInLine, availableListener, offerOn, acceptAndChat, say, waitForMessage,
         endChat, signInSupervisor, axeViolations } from "../flows.mjs";

const REDIS_TIMEOUT = ["--redis-timeout-ms=1000"];
const RECONNECTING = "Reconnecting to Warmline… you keep your place, and nothing is lost.";

describe("Warmline losing its database for a while", () => {
  const suite = withStack({ matchmakerFlags: REDIS_TIMEOUT, relayFlags: REDIS_TIMEOUT }, async (stack) => ({
    listener: await stack.createListener({ name: "Lee", topics: ["loneliness"], languages: ["en"], maxChats: 1 }),
    supervisor: await stack.createSupervisor({ name: "Robin" }),
  }));

  it("every page says it is reconnecting, then clears, and nothing is lost", { timeout: 60000 }, async () => {
    const { stack, listener, supervisor } = suite;
    const dashboard = await stack.open("/supervisor.html");
    await signInSupervisor(dashboard, supervisor.token);
    const feed = dashboard.locator("#conn");
    await until(async () => (await feed.innerText()) === "Live", T, "the dashboard to be live");

    const chatting = await waitingSeeker(stack, { topic: "loneliness", language: "en" });
    const desk = await availableListener(stack, listener, { name: "Lee" });
    await offerOn(desk).waitFor({ timeout: T });
    await acceptAndChat(chatting, desk);
    await say(chatting, "before");
    await waitForMessage(desk, "before", "them");
    const waiting = await waitingSeeker(stack, { topic: "loneliness", language: "en" });
    await waitInLine(waiting, 1);

    stack.stopRedis();
    // the waiting seeker: a polite status, the place kept
    await waiting.getByRole("status").filter({ hasText: RECONNECTING }).waitFor({ timeout: T });
    await waitInLine(waiting, 1);
    // the seeker in the chat: told it is reconnecting; what it writes waits to be sent
    await chatting.getByRole("status").filter({ hasText: /Reconnecting/ }).first().waitFor({ timeout: T });
    await say(chatting, "written while Warmline was reconnecting");
    // the listener: a banner on the desk
    const banner = desk.getByRole("status").filter({ hasText: "Reconnecting to Warmline… Nothing is lost" });
    await banner.waitFor({ timeout: T });
    assert.deepEqual(await axeViolations(desk), [], "axe-core on the desk with the banner");
    // the dashboard: the live numbers are paused, not gone
    await until(async () => /^Live numbers paused/.test(await feed.innerText()), T, "the dashboard to say it is paused");
    assert.ok(await dashboard.getByRole("table", { name: "Queues right now" }).isVisible());
    await stack.screenshot(waiting, "seeker-reconnecting");

    stack.continueRedis();
    await until(async () => (await waiting.locator("#conn-status").innerText()) === "", T, "the waiting seeker's status to clear");
    await waitInLine(waiting, 1);
    await banner.waitFor({ state: "hidden", timeout: T });
    await until(async () => (await feed.innerText()) === "Live", T, "the dashboard to be live again");
    await waitForMessage(desk, "written while Warmline was reconnecting", "them");
    await chatting.locator('.msg[data-from="me"]').filter({ hasText: "written while Warmline" }).filter({ hasText: /Sent|Delivered|Read/ })
      .waitFor({ timeout: T });
    await until(async () => (await chatting.locator("#conn-status").innerText()) === "", T, "the chatting seeker's status to clear");

    // and it all still works: the listener's freed slot goes to the waiting seeker
    await endChat(desk);
    await offerOn(desk).waitFor({ timeout: T });
    await acceptAndChat(waiting, desk);
    await say(waiting, "after");
    await waitForMessage(desk, "after", "them");
    assert.deepEqual(stack.pageErrors, []);
    for (const page of [waiting, chatting, desk, dashboard]) await page.context().close();
  });
});

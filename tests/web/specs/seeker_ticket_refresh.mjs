// Relay tickets expire (here after 3 s). When both sides lose their relay connection after that,
// each gets a fresh ticket from the matchmaker by itself: the seeker by resuming on the
// matchmaker, the listener by signing in once more on a second, short-lived connection (which
// leaves it available). The chat then carries on both ways with nothing lost.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;
const TTL = 3000;

async function transcript(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible .msg').evaluateAll((els) =>
    els.map((el) => [el.dataset.from, el.querySelector(".msg-text").textContent]));
}

async function expectTranscript(page, expected, what) {
  let last;
  await until(async () => {
    last = await transcript(page);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, T, what).catch((e) => assert.deepEqual(last, expected, `${what} (${e.message})`));
}

// Routes a page's relay WebSockets through the test so they can be cut; counts matchmaker sockets.
async function instrument(page) {
  const s = { relay: [], matchmaker: 0 };
  await page.routeWebSocket((url) => url.pathname === "/v1/relay", (ws) => {
    const server = ws.connectToServer();
    s.relay.push(ws);
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => ws.send(m));
    ws.onClose((code, reason) => server.close({ code, reason }));
    server.onClose((code, reason) => ws.close({ code, reason }));
  });
  page.on("websocket", (ws) => { if (new URL(ws.url()).pathname === "/v1/ws") s.matchmaker += 1; });
  return s;
}

describe("expired relay tickets", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack({ matchmakerFlags: [`--ticket-ttl-ms=${TTL}`] });
    listener = await stack.createListener({ name: "Ola", topics: ["depression"], languages: ["en"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("are replaced from the matchmaker on both sides", { timeout: 90000 }, async () => {
    const browser = await stack.browser();
    const seeker = await (await browser.newContext()).newPage();
    const desk = await (await browser.newContext()).newPage();
    for (const p of [seeker, desk]) p.on("pageerror", (e) => stack.pageErrors.push(e.message));
    const sIn = await instrument(seeker);
    const dIn = await instrument(desk);
    await desk.goto(new URL("/listener.html", stack.webUrl).href);
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    await seeker.goto(stack.webUrl);
    await seeker.getByLabel("Topic").selectOption("depression");
    await seeker.getByRole("button", { name: "Talk to someone" }).click();
    await desk.getByRole("region", { name: "New chat request" }).getByRole("button", { name: "Accept" }).click();
    const started = Date.now();
    const sBox = seeker.getByRole("textbox", { name: "Message" });
    const lBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });
    await sBox.fill("s1"); await sBox.press("Enter");
    await lBox.fill("l1"); await lBox.press("Enter");
    await expectTranscript(seeker, [["me", "s1"], ["them", "l1"]], "the first exchange");
    const sMm = sIn.matchmaker;
    const dMm = dIn.matchmaker;

    // the tickets both sides joined with are now past their expiry
    await until(() => Date.now() > started + TTL + 500, TTL + 5000, "the tickets to expire");
    const sRelay = sIn.relay.length;
    const dRelay = dIn.relay.length;
    for (const ws of [...sIn.relay, ...dIn.relay]) ws.close({ code: 4000, reason: "network drop" });
    await lBox.fill("l2: written while both were cut off"); await lBox.press("Enter");
    await sBox.fill("s2: written while both were cut off"); await sBox.press("Enter");

    await until(() => sIn.relay.length > sRelay && dIn.relay.length > dRelay, T, "both to rejoin the relay");
    await until(() => sIn.matchmaker > sMm, T, "the seeker to resume on the matchmaker for a ticket");
    await until(() => dIn.matchmaker > dMm, T, "the listener to sign in once more for a ticket");
    await until(async () => (await transcript(seeker)).length === 4 && (await transcript(desk)).length === 4, T, "four messages on both sides");
    const sRows = await transcript(seeker);
    const dRows = await transcript(desk);
    assert.deepEqual(sRows.slice(0, 2), [["me", "s1"], ["them", "l1"]]);
    assert.deepEqual(new Set(sRows.slice(2).map(String)), new Set([["me", "s2: written while both were cut off"], ["them", "l2: written while both were cut off"]].map(String)));
    assert.deepEqual(new Set(dRows.slice(2).map(String)), new Set([["them", "s2: written while both were cut off"], ["me", "l2: written while both were cut off"]].map(String)));
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "status"), "available",
                 "the listener's extra sign-in left it available");
    assert.equal(await desk.getByRole("switch", { name: "Available" }).getAttribute("aria-checked"), "true");
    assert.deepEqual(stack.pageErrors, []);
  });
});

// Relay tickets expire (here after 3 s). When both sides lose their relay connection after that,
// each gets a fresh ticket from the matchmaker by itself: the seeker by resuming on the
// matchmaker, the listener by signing in once more on a second, short-lived connection (which
// leaves it available). The chat then carries on both ways with nothing lost.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, routeSockets, countSockets, availableListener, askForChat, acceptOffer,
         availableSwitch, say, expectTranscript, expectTranscriptEnding, flip } from "../flows.mjs";

const TTL = 3000;

// Routes a page's relay WebSockets through the test so they can be cut; counts matchmaker sockets.
async function instrument(page) {
  return { relay: await routeSockets(page, "/v1/relay"), matchmaker: countSockets(page, "/v1/ws") };
}

describe("expired relay tickets", () => {
  // the relay's next tickets (each welcome gives one) expire as fast as the matchmaker's
  const suite = withStack({ matchmakerFlags: [`--ticket-ttl-ms=${TTL}`], relayFlags: [`--ticket-ttl-ms=${TTL}`] },
                          async (stack) => ({
    listener: await stack.createListener({ name: "Ola", topics: ["depression"], languages: ["en"] }),
  }));

  it("are replaced from the matchmaker on both sides", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    const sIn = await instrument(seeker);
    const dIn = await instrument(desk);
    await availableListener(stack, listener, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "depression" });
    await acceptOffer(desk);
    const started = Date.now();
    await say(seeker, "s1");
    await expectTranscript(desk, [["them", "s1"]], "s1 at the listener");
    await say(desk, "l1");
    await expectTranscript(seeker, [["me", "s1"], ["them", "l1"]], "the first exchange");
    // a ticket never rides in a relay URL (URLs are logged): it goes in hello
    const urls = [];
    for (const page of [seeker, desk]) page.on("websocket", (ws) => urls.push(ws.url()));
    const sMm = sIn.matchmaker.opened;
    const dMm = dIn.matchmaker.opened;

    // the tickets both sides joined with are now past their expiry
    await until(() => Date.now() > started + TTL + 500, TTL + 5000, "the tickets to expire");
    const sRelay = sIn.relay.length;
    const dRelay = dIn.relay.length;
    for (const ws of [...sIn.relay, ...dIn.relay]) ws.close({ code: 4000, reason: "network drop" });
    await say(desk, "l2: written while both were cut off");
    await say(seeker, "s2: written while both were cut off");

    await until(() => sIn.relay.length > sRelay && dIn.relay.length > dRelay, T, "both to rejoin the relay");
    await until(() => sIn.matchmaker.opened > sMm, T, "the seeker to resume on the matchmaker for a ticket");
    await until(() => dIn.matchmaker.opened > dMm, T, "the listener to sign in once more for a ticket");
    const crossing = [["me", "s2: written while both were cut off"], ["them", "l2: written while both were cut off"]];
    await expectTranscriptEnding(seeker, [["me", "s1"], ["them", "l1"]], crossing, "the seeker");
    await expectTranscriptEnding(desk, [["them", "s1"], ["me", "l1"]], flip(crossing), "the listener");
    assert.equal(await stack.redis("HGET", `wl:listener:${listener.id}`, "status"), "available",
                 "the listener's extra sign-in left it available");
    assert.equal(await availableSwitch(desk).getAttribute("aria-checked"), "true");
    const relayUrls = urls.filter((u) => new URL(u).pathname === "/v1/relay");
    assert.ok(relayUrls.length >= 2, `relay sockets seen: ${relayUrls.length}`);
    for (const u of relayUrls) assert.ok(!/ticket/i.test(u), "no ticket in a relay URL");
    assert.deepEqual(stack.pageErrors, []);
  });
});

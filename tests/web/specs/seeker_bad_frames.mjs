// Broken, hostile or surprising frames from either service never crash the page and never show
// as messages: garbage JSON, wrong types, replies nobody asked for, a forged message, a message
// far ahead of its turn, a swapped key, a loss reported for the wrong side. The chat carries on
// afterwards, exactly once and in order.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { T, withStack, blankPage, visit, routeSockets, availableListener, askForChat, waitInLine, acceptOffer, say,
         expectTranscript, expectTranscriptEnding, safetyCode } from "../flows.mjs";

describe("a seeker's page fed bad frames", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Eli", topics: ["work"], languages: ["en"] }),
  }));

  it("drops them and keeps the chat going", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    // both services' sockets go through the test, which can send on them as the service would
    const matchmaker = await routeSockets(seeker, "/v1/ws");
    const relay = await routeSockets(seeker, "/v1/relay");
    await visit(stack, seeker);
    const desk = await availableListener(stack, listener);
    await askForChat(seeker, { topic: "work" });

    // while waiting: junk from the matchmaker
    await waitInLine(seeker);
    for (const junk of ["not json", "[]", "null", "42", '{"queueUpdate":"x"}', '{"queueUpdate":{"position":"lots"}}',
                        '{"requestId":"nobody-asked","ok":{}}', '{"error":{"code":"INTERNAL"}}', '{"chatEnded":{"sessionId":7}}',
                        '{"chatStarted":{}}', '{"offer":{"offerId":"x"}}', '{"seekerWelcome":{"state":"IN_CHAT"}}'])
      matchmaker.at(-1).send(junk);

    await acceptOffer(desk);
    await say(seeker, "s1");
    await expectTranscript(desk, [["them", "s1"]], "s1 at the listener");
    await say(desk, "l1");
    await expectTranscript(seeker, [["me", "s1"], ["them", "l1"]], "the first exchange");

    // junk from the relay: nothing of it may show as a message
    const junkKey = Buffer.alloc(32, 9).toString("base64");
    for (const junk of ["garbage", '{"deliver":"x"}', '{"deliver":{"seq":"1","ciphertext":"@@@"}}',
                        '{"deliver":{"from":"LISTENER","seq":"1","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}',
                        '{"deliver":{"from":"LISTENER","seq":"99","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}',
                        '{"peerKey":{"publicKey":"AAAA"}}', `{"peerKey":{"publicKey":"${junkKey}"}}`,
                        '{"peerRead":{"through":"x"}}', '{"peerTyping":null}', '{"requestId":"c999","ack":{"seq":"5"}}',
                        '{"lost":"x"}', '{"lost":{"from":"SEEKER","first":"2","through":"9"}}', '{"lost":{"first":"2","through":"9"}}',
                        '{"peerReceived":"x"}', '{"peerReceived":{"through":"-3"}}',
                        '{"deliver":{"from":"LISTENER","seq":"2","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}'])
      relay.at(-1).send(junk);
    await seeker.getByRole("alert").filter({ hasText: "could not be verified" }).waitFor({ timeout: T });

    // the real seq 2 still arrives, once; the forged one and the one far ahead never show
    await say(desk, "l2");
    await say(seeker, "s2");
    await expectTranscriptEnding(seeker, [["me", "s1"], ["them", "l1"]], [["them", "l2"], ["me", "s2"]], "the seeker");
    await expectTranscriptEnding(desk, [["them", "s1"], ["me", "l1"]], [["me", "l2"], ["them", "s2"]], "the listener");
    // the safety code is still that of the real keys
    assert.equal(await safetyCode(seeker), await safetyCode(desk));
    assert.deepEqual(stack.pageErrors, []);
  });
});

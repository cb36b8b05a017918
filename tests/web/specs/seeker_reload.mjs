// Reloads and dropped connections lose nothing. A seeker reloads while waiting (keeps the place),
// and in the middle of a chat: with a message of its own not yet stored by the relay (its sends
// are held back by a WebSocket route), and while the listener writes. The relay connection is also
// cut under it, and the listener reloads too. Every message appears exactly once, in order, on
// both sides, and the safety code stays the same (the key pair survived the reload).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, visit, routeSockets, askForChat, waitInLine, availableListener, acceptAndChat, say,
         expectTranscript, expectTranscriptEnding, flip, safetyCode } from "../flows.mjs";
import { TABLES } from "../languages.mjs";

describe("a seeker who reloads or drops off", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Kim", topics: ["grief"], languages: ["de"] }),
  }));

  it("keeps its place in line and every message of the chat, exactly once and in order", { timeout: 150000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    // Every relay connection of the seeker goes through the test: it can hold back the seeker's
    // sends (so they stay unacknowledged) and cut the connection.
    const hold = { sends: false, held: 0 };
    const relay = await routeSockets(seeker, "/v1/relay", {
      fromPage: (m, forward) => {
        if (hold.sends && String(m).includes('"send"')) hold.held += 1;
        else forward();
      },
    });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "grief", language: "de" });
    await waitInLine(seeker, 1);

    // reload while waiting: the same request, still first in line
    await seeker.reload();
    await waitInLine(seeker, 1);
    assert.equal(await stack.redis("ZCARD", "wl:q:grief:de"), "1", "still exactly one request queued");

    const desk = await availableListener(stack, listener);
    await acceptAndChat(seeker, desk);

    const expected = [];  // from the seeker's side: [from, text]
    const both = async (what) => {
      await expectTranscript(seeker, expected, `seeker: ${what}`);
      await expectTranscript(desk, flip(expected), `listener: ${what}`);
    };

    await say(seeker, "s1: Ich vermisse sie so sehr.");
    expected.push(["me", "s1: Ich vermisse sie so sehr."]);
    await both("first message");
    await say(desk, "l1: Ich bin da. Erzähl mir von ihr.");
    expected.push(["them", "l1: Ich bin da. Erzähl mir von ihr."]);
    await both("first reply");
    const codeBefore = await safetyCode(seeker);
    assert.equal(codeBefore, await safetyCode(desk));

    // s2 leaves the page but never reaches the relay: it stays unacknowledged
    hold.sends = true;
    await say(seeker, "s2: sent just before the reload");
    await until(() => hold.held >= 1, T, "the send to be held back");
    // (the seeker's page speaks German, the chat's language)
    assert.ok((await seeker.locator('.msg[data-from="me"]').last().innerText()).includes(TABLES.de["chat.state.sending"]));
    hold.sends = false;

    // the listener writes while the seeker's page reloads
    await Promise.all([
      seeker.reload(),
      say(desk, "l2: written while the seeker reloads"),
    ]);
    expected.push(["me", "s2: sent just before the reload"]);
    expected.push(["them", "l2: written while the seeker reloads"]);
    // the order between s2 and l2 can differ on the two sides; compare each side's own order
    const seekerRows = await expectTranscriptEnding(seeker, expected.slice(0, 3), expected.slice(3),
                                                    "the seeker kept its transcript across the reload");
    const deskRows = await expectTranscriptEnding(desk, flip(expected.slice(0, 2)), flip(expected.slice(2)),
                                                  "nothing lost or repeated at the listener");
    expected.length = 0;
    expected.push(...seekerRows);
    await expectTranscript(desk, deskRows, "the listener's view stays as it is");

    assert.equal(await safetyCode(seeker), codeBefore, "the same key pair after the reload");

    // after the reload, both directions still work
    await say(seeker, "s3: after the reload");
    await say(desk, "l3: I see it");
    const s3l3 = [["me", "s3: after the reload"], ["them", "l3: I see it"]];
    const after3 = await expectTranscriptEnding(seeker, expected, s3l3, "the seeker: s3 and l3");
    const deskAfter3 = await expectTranscriptEnding(desk, deskRows, flip(s3l3), "the listener: s3 and l3");
    expected.length = 0;
    expected.push(...after3);

    // the network drops the relay connection: reconnect, resume, nothing lost
    const before = relay.length;
    for (const ws of relay) ws.close({ code: 4000, reason: "network drop" });
    await say(desk, "l4: while the seeker was cut off");
    await until(() => relay.length > before, T, "the seeker to reconnect to the relay");
    expected.push(["them", "l4: while the seeker was cut off"]);
    await expectTranscript(seeker, expected, "the seeker after a dropped connection");
    await say(seeker, "s4: back again");
    expected.push(["me", "s4: back again"]);
    await expectTranscript(seeker, expected, "the seeker's own message after the drop");
    await expectTranscript(desk, [...deskAfter3, ["me", "l4: while the seeker was cut off"], ["them", "s4: back again"]],
                           "the listener after the seeker's drop");

    // the listener reloads too: signed in again, the chat comes back with its messages
    await desk.reload();
    const deskRows2 = [...deskAfter3, ["me", "l4: while the seeker was cut off"], ["them", "s4: back again"]];
    await expectTranscript(desk, deskRows2, "the listener's transcript after its reload");
    await say(desk, "l5: after my reload");
    await say(seeker, "s5: still here");
    const l5s5 = [["them", "l5: after my reload"], ["me", "s5: still here"]];
    const finalSeeker = await expectTranscriptEnding(seeker, expected, l5s5, "the seeker: l5 and s5");
    const finalDesk = await expectTranscriptEnding(desk, deskRows2, flip(l5s5), "the listener: l5 and s5");
    assert.equal(await safetyCode(desk), codeBefore, "the listener kept its key pair too");
    for (const rows of [finalSeeker, finalDesk]) {
      const texts = rows.map((r) => r[1]);
      assert.equal(new Set(texts).size, texts.length, "no message shown twice");
    }
    assert.deepEqual(stack.pageErrors, []);
    await seeker.context().close();
  });
});

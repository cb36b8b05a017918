// A seeker's tab storage fills up in the middle of a chat (sessionStorage holds about 5 MB per
// tab). The page says so once, keeps what a reload cannot do without (keys, sequence numbers,
// unsent messages and the newest lines), and after a reload its next message still reaches the
// listener: no sequence number is used twice, nothing is lost or shown twice. Before that, the
// seeker joins the relay first and simply waits for the listener's key (no reconnecting).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, routeSockets, countSockets, availableListener, visit, askForChat, acceptOffer, say,
         waitForMessage, expectTranscript } from "../flows.mjs";

const LONG = 3500;      // characters of each long message (the message box takes 4,000)
const ROOM = 9000;      // characters left free in the seeker's tab storage: two long ones fit, three do not

describe("a seeker whose tab storage is full", () => {
  const suite = withStack({}, async (stack) => ({
    listener: await stack.createListener({ name: "Noor", topics: ["loneliness"], languages: ["en"] }),
  }));

  it("keeps the chat going across a reload without reusing a sequence number", { timeout: 90000 }, async () => {
    const { stack, listener } = suite;
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    const seekerRelay = countSockets(seeker, "/v1/relay");
    // The listener's relay frames wait here until `gate.open`, so the seeker is first in the chat.
    const gate = { open: false, held: [] };
    await routeSockets(desk, "/v1/relay", {
      fromPage: (m, forward) => { if (gate.open) forward(); else gate.held.push(forward); },
    });

    await availableListener(stack, listener, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "loneliness" });
    await acceptOffer(desk);

    // the seeker waits for the listener's key on its one relay connection
    await seeker.getByText("Waiting for the listener to join…").waitFor({ timeout: T });
    const waitingSince = Date.now();
    await until(() => Date.now() > waitingSince + 4000, 6000, "four seconds of waiting");
    assert.equal(seekerRelay.opened, 1, "the seeker waits for the key instead of reconnecting");
    gate.open = true;
    for (const send of gate.held.splice(0)) send();

    await say(seeker, "s1: hello");
    await say(desk, "l1: hello, I'm here");
    await expectTranscript(seeker, [["me", "s1: hello"], ["them", "l1: hello, I'm here"]], "the first exchange");
    assert.equal(seekerRelay.opened, 1);

    // fill the seeker's tab storage, leaving ROOM characters
    await seeker.evaluate((room) => {
      sessionStorage.setItem("test.reserve", "r".repeat(room));
      let i = 0;
      for (let size = 1 << 20; size >= 64; size >>= 1) {
        for (;;) {
          try { sessionStorage.setItem(`test.filler.${i}`, "x".repeat(size)); i += 1; } catch { break; }
        }
      }
      sessionStorage.removeItem("test.reserve");
    }, ROOM);

    const long = (tag) => `${tag}: ${tag.repeat(LONG)}`.slice(0, LONG);
    const [L1, L2, L3] = [long("A"), long("B"), long("C")];
    for (const text of [L1, L2, L3]) await say(desk, text);
    await expectTranscript(seeker, [["me", "s1: hello"], ["them", "l1: hello, I'm here"], ["them", L1], ["them", L2], ["them", L3]],
                           "the long messages at the seeker");
    await seeker.getByRole("alert").filter({ hasText: "out of room" }).waitFor({ timeout: T });

    await say(seeker, "s2: the room is full");
    await waitForMessage(desk, "s2: the room is full");
    // the counters made it into storage even though the whole transcript does not fit
    await until(() => seeker.evaluate(() => {
      const key = Object.keys(sessionStorage).find((k) => k.startsWith("wl.chat."));
      const s = key && JSON.parse(sessionStorage.getItem(key));
      return s && s.nextSeq === 3 && s.kept.length === 0;
    }), T, "the stored next seq to be 3 with nothing kept for a resend");

    await seeker.reload();
    // the newest lines came back (the oldest did not fit), and nothing twice
    await expectTranscript(seeker, [["them", L2], ["them", L3], ["me", "s2: the room is full"]], "the seeker after the reload");
    await say(seeker, "s3: after the reload");
    const deskExpected = [["them", "s1: hello"], ["me", "l1: hello, I'm here"], ["me", L1], ["me", L2], ["me", L3],
                          ["them", "s2: the room is full"], ["them", "s3: after the reload"]];
    await expectTranscript(desk, deskExpected, "the listener gets the message sent after the reload");
    await say(desk, "l2: still here");
    await expectTranscript(seeker, [["them", L2], ["them", L3], ["me", "s2: the room is full"], ["me", "s3: after the reload"],
                                    ["them", "l2: still here"]], "the seeker after the reload");
    assert.deepEqual(stack.pageErrors, []);
  });
});

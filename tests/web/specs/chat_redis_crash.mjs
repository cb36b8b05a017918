// Redis loses its last writes in the middle of a browser chat (docs/relay-protocol.md, "When Redis
// loses its last writes: acknowledged means kept"). Redis runs without its AOF, so a crash
// (SIGKILL) brings it back to the last SAVE. Lines the listener had received and confirmed are
// lost with Redis, and so are lines acknowledged while the listener's network was quiet. The
// seeker's page let the first go (the listener has them) and kept the others until the
// listener's receipt: the relay's WRONG_STATE makes it say hello again on the same connection,
// pass over the first (silently: the listener has them) and send the others again; the listener
// gets every line once, in order, and nobody sees a note. A line nobody has any more (a tab that
// let it go at the ack, as pages did before they kept their lines until the receipt) is passed
// over too, and then both sides see a note in the conversation; the chat goes on.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../harness.mjs";
import { T, withStack, blankPage, routeSockets, countSockets, availableListener, visit, askForChat, acceptAndChat, say,
         waitForMessage, expectTranscript, axeViolations } from "../flows.mjs";

// A chat's bucket, as the relay computes it (relay::bucket_of, docs/redis-keys.md): "b" and the
// low byte of the CRC16 (XMODEM, Redis Cluster's) of its id, in two hex digits.
function bucketOf(id) {
  let crc = 0;
  for (const byte of Buffer.from(id, "utf8")) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return "b" + (crc & 0xff).toString(16).padStart(2, "0");
}

const NOT_DELIVERED = /could not be delivered/;

// The page's relay WebSockets go through the test; while `net.cut` is set nothing passes either
// way (a network that went quiet without closing anything). `net.welcomes` counts the relay's
// welcomes that reached the page.
async function quietableRelay(page) {
  const net = { cut: false, welcomes: 0 };
  const pass = (m, forward) => { if (!net.cut) forward(); };
  const fromService = (m, forward) => {
    if (net.cut) return;
    if (typeof m === "string" && m.includes('"welcome"')) net.welcomes += 1;
    forward();
  };
  net.sockets = await routeSockets(page, "/v1/relay", { fromPage: pass, fromService });
  // The network is back: the connection that carried nothing drops, and the page reconnects.
  net.restore = () => {
    net.cut = false;
    net.sockets.at(-1).close({ code: 4000, reason: "network drop" });
  };
  return net;
}

// What this tab's chat entry holds: the chat's id and how many sealed lines it keeps for a resend.
async function stored(page) {
  return page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("wl.chat."));
    const s = key ? JSON.parse(sessionStorage.getItem(key)) : null;
    return s ? { sessionId: s.sessionId, kept: s.kept.length } : null;
  });
}

// Every item of the conversation log in order: [from, text] for a message, ["note", text] for
// Warmline's own word.
async function conversation(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible li').evaluateAll((els) =>
    els.map((el) => (el.classList.contains("log-note")
      ? ["note", el.textContent]
      : [el.dataset.from, el.querySelector(".msg-text").textContent])));
}

function myLine(page, text) {
  return page.locator('.msg[data-from="me"]').filter({ hasText: text });
}

// Waits until each of this side's lines says it reached the other person.
async function allDelivered(page, what) {
  const metas = page.locator('[role="log"][aria-label="Conversation"]:visible .msg[data-from="me"] .msg-meta');
  await until(async () => (await metas.allTextContents()).every((m) => /Delivered|Read/.test(m)), T, what);
}

describe("Redis losing its last writes in the middle of a chat", () => {
  const suite = withStack({ redisFlags: ["--appendonly", "no"] }, async (stack) => ({
    ana: await stack.createListener({ name: "Ana", topics: ["loneliness"], languages: ["en"], maxChats: 1 }),
    ben: await stack.createListener({ name: "Ben", topics: ["work"], languages: ["en"], maxChats: 1 }),
  }));

  it("passes over what the listener had and sends again what it had not, on the same connection: every line once and in order, no note",
     { timeout: 90000 }, async () => {
    const { stack, ana } = suite;
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    const seekerRelay = countSockets(seeker, "/v1/relay");
    const deskNet = await quietableRelay(desk);
    await availableListener(stack, ana, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "loneliness" });
    await acceptAndChat(seeker, desk);

    await say(seeker, "s1: hello");
    await say(desk, "l1: hi, I'm Ana");
    await say(seeker, "s2: thank you");
    await expectTranscript(desk, [["them", "s1: hello"], ["me", "l1: hi, I'm Ana"], ["them", "s2: thank you"]],
                           "the listener before the snapshot");
    await until(async () => (await stored(seeker)).kept === 0, T, "the seeker to let go of what the listener has");
    const { sessionId } = await stored(seeker);
    const relayField = (field) => stack.redis("HGET", `wl:relay:{${bucketOf(sessionId)}}:${sessionId}`, field);
    await stack.redis("SAVE");

    // received and confirmed: the seeker lets s3 and s4 go
    await say(seeker, "s3: it's been a long week");
    await say(seeker, "s4: work, mostly");
    await waitForMessage(desk, "s4: work, mostly", "them");
    await until(async () => (await stored(seeker)).kept === 0, T, "the seeker to let go of s3 and s4");
    // the listener's network goes quiet; the next lines are stored, not received: kept
    deskNet.cut = true;
    await say(seeker, "s5: are you still there?");
    await say(seeker, "s6: no rush");
    await myLine(seeker, "s6: no rush").filter({ hasText: "Sent" }).waitFor({ timeout: T });
    await myLine(seeker, "s5: are you still there?").filter({ hasText: "Sent" }).waitFor({ timeout: T });
    assert.equal((await stored(seeker)).kept, 2, "acknowledged lines are kept until the listener's receipt");
    assert.equal(await relayField("sent_s"), "6");

    await stack.crashRedis();
    assert.equal(await relayField("sent_s"), "2", "Redis came back without s3 to s6");
    // the listener's network is back: the quiet connection drops and the page says hello again
    deskNet.restore();
    await until(() => deskNet.welcomes === 2, T, "the listener's page to be welcomed again");

    // the relay refuses s7 (it expects 3): the seeker's page asks where the chat stands, passes
    // over s3 and s4 (it no longer has them; the listener does) and sends s5, s6 and s7 again
    await say(seeker, "s7: I'll wait");
    await expectTranscript(desk, [["them", "s1: hello"], ["me", "l1: hi, I'm Ana"], ["them", "s2: thank you"],
                                  ["them", "s3: it's been a long week"], ["them", "s4: work, mostly"],
                                  ["them", "s5: are you still there?"], ["them", "s6: no rush"], ["them", "s7: I'll wait"]],
                           "the listener after the crash: every line once, in order");
    await allDelivered(seeker, "every line of the seeker to reach the listener");
    await until(async () => (await stored(seeker)).kept === 0, T, "the seeker to let go of what the listener has");
    assert.equal(await relayField("sent_s"), "7");
    assert.match(await stack.redis("XRANGE", `wl:log:{${bucketOf(sessionId)}}:${sessionId}:s`, "0-4", "0-4"), /\bg\b/,
                 "s3 and s4 were passed over (one log entry with g)");
    assert.equal(seekerRelay.opened, 1, "the resync was a hello on the open connection");
    for (const [page, who] of [[seeker, "seeker"], [desk, "listener"]]) {
      assert.equal(await page.getByText(NOT_DELIVERED).count(), 0, `no note for the ${who}`);
      assert.equal(await page.locator(".log-note").count(), 0, `nothing but messages in the ${who}'s conversation`);
    }
    assert.deepEqual(stack.pageErrors, []);
    for (const page of [seeker, desk]) await page.context().close();
  });

  it("passes over a line nobody has any more, with a note in both conversations, and the chat goes on",
     { timeout: 90000 }, async () => {
    const { stack, ben } = suite;
    const seeker = await blankPage(stack);
    const desk = await blankPage(stack);
    const deskNet = await quietableRelay(desk);
    await availableListener(stack, ben, { page: desk });
    await visit(stack, seeker);
    await askForChat(seeker, { topic: "work" });
    await acceptAndChat(seeker, desk);

    await say(seeker, "b1: hello");
    await expectTranscript(desk, [["them", "b1: hello"]], "the listener before the snapshot");
    await until(async () => (await stored(seeker)).kept === 0, T, "the seeker to let go of what the listener has");
    const { sessionId } = await stored(seeker);
    const relayField = (field) => stack.redis("HGET", `wl:relay:{${bucketOf(sessionId)}}:${sessionId}`, field);
    await stack.redis("SAVE");

    deskNet.cut = true;
    await say(seeker, "b2: this one is lost");
    await myLine(seeker, "b2: this one is lost").filter({ hasText: "Sent" }).waitFor({ timeout: T });
    await stack.crashRedis();

    // This tab no longer has b2: its stored chat is what a page of the previous version kept, which
    // let a line go at its ack. After a reload it learns that the relay has only b1.
    await seeker.evaluate(() => {
      const key = Object.keys(sessionStorage).find((k) => k.startsWith("wl.chat."));
      const s = JSON.parse(sessionStorage.getItem(key));
      delete s.kept;
      s.unacked = [];
      sessionStorage.setItem(key, JSON.stringify(s));
    });
    await seeker.reload();
    await expectTranscript(seeker, [["me", "b1: hello"], ["me", "b2: this one is lost"]], "the seeker after the reload");
    await seeker.getByText("One of your messages could not be delivered").waitFor({ timeout: T });
    await myLine(seeker, "b2: this one is lost").filter({ hasText: "Not delivered" }).waitFor({ timeout: T });
    await until(async () => (await relayField("sent_s")) === "2", T, "the relay to take the skip");

    // the listener is back: the relay's log says where b2 was; the page passes over it, says so,
    // and confirms it (its receipt moves past the lost line)
    deskNet.restore();
    const note = desk.getByRole("log", { name: "Conversation" }).getByRole("listitem")
      .filter({ hasText: "A message from the other person could not be delivered" });
    await note.waitFor({ timeout: T });
    await until(async () => (await relayField("recv_l")) === "2", T, "the listener's receipt to cover the lost line");

    await say(seeker, "b3: still here");
    await expectTranscript(desk, [["them", "b1: hello"], ["them", "b3: still here"]], "the listener's messages");
    const deskSaw = await conversation(desk);
    assert.deepEqual(deskSaw.map(([from]) => from), ["them", "note", "them"], "the note stands where the lost line was");
    assert.match(deskSaw[1][1], /^A message from the other person could not be delivered/);
    const seekerSaw = await conversation(seeker);
    assert.deepEqual(seekerSaw.map(([from, text]) => (from === "note" ? from : text)),
                     ["b1: hello", "b2: this one is lost", "note", "b3: still here"]);
    await myLine(seeker, "b3: still here").filter({ hasText: /Delivered|Read/ }).waitFor({ timeout: T });
    assert.equal(await note.count(), 1, "one note");
    await stack.screenshot(desk, "listener-message-lost");
    await stack.screenshot(seeker, "seeker-message-lost");
    for (const colorScheme of ["light", "dark"]) {
      for (const [page, who] of [[desk, "listener"], [seeker, "seeker"]]) {
        await page.emulateMedia({ colorScheme });
        assert.deepEqual(await axeViolations(page), [], `axe-core on the ${who}'s chat with the note (${colorScheme})`);
      }
    }
    assert.deepEqual(stack.pageErrors, []);
    for (const page of [seeker, desk]) await page.context().close();
  });
});

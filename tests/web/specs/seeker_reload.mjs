// Reloads and dropped connections lose nothing. A seeker reloads while waiting (keeps the place),
// and in the middle of a chat: with a message of its own not yet stored by the relay (its sends
// are held back by a WebSocket route), and while the listener writes. The relay connection is also
// cut under it, and the listener reloads too. Every message appears exactly once, in order, on
// both sides, and the safety code stays the same (the key pair survived the reload).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;

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

async function say(page, text) {
  const box = page.getByRole("textbox", { name: "Message" }).filter({ visible: true });
  await box.fill(text);
  await box.press("Enter");
}

async function safetyCode(page) {
  const button = page.getByRole("button", { name: "Show safety code" }).filter({ visible: true });
  if (await button.count()) await button.click();
  const code = page.getByTestId("safety-code").filter({ visible: true });
  await until(async () => /^\d{5}( \d{5}){5}$/.test((await code.innerText()).trim()), T, "a safety code");
  return (await code.innerText()).trim();
}

describe("a seeker who reloads or drops off", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Kim", topics: ["grief"], languages: ["de"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("keeps its place in line and every message of the chat, exactly once and in order", { timeout: 150000 }, async () => {
    const browser = await stack.browser();
    const context = await browser.newContext();
    const seeker = await context.newPage();
    seeker.on("pageerror", (e) => stack.pageErrors.push(e.message));
    // Every relay connection of the seeker goes through this route: it can hold back the
    // seeker's sends (so they stay unacknowledged) and cut the connection.
    const relay = { holdSends: false, held: 0, sockets: [] };
    await seeker.routeWebSocket((url) => url.pathname === "/v1/relay", (ws) => {
      const server = ws.connectToServer();
      relay.sockets.push(ws);
      ws.onMessage((m) => {
        if (relay.holdSends && String(m).includes('"send"')) { relay.held += 1; return; }
        server.send(m);
      });
      server.onMessage((m) => ws.send(m));
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => ws.close({ code, reason }));
    });
    await seeker.goto(stack.webUrl);

    await seeker.getByLabel("Topic").selectOption("grief");
    await seeker.getByLabel("Language").selectOption("de");
    await seeker.getByRole("button", { name: "Talk to someone" }).click();
    await seeker.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });

    // reload while waiting: the same request, still first in line
    await seeker.reload();
    await seeker.getByRole("status").filter({ hasText: "You are number 1 in line" }).waitFor({ timeout: T });
    assert.equal(await stack.redis("ZCARD", "wl:q:grief:de"), "1", "still exactly one request queued");

    const desk = await stack.open("/listener.html");
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    await desk.getByRole("region", { name: "New chat request" }).getByRole("button", { name: "Accept" }).click();
    await seeker.getByRole("textbox", { name: "Message" }).waitFor({ timeout: T });

    const expected = [];  // from the seeker's side: [from, text]
    const flip = (rows) => rows.map(([from, text]) => [from === "me" ? "them" : "me", text]);
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
    relay.holdSends = true;
    await say(seeker, "s2: sent just before the reload");
    await until(() => relay.held >= 1, T, "the send to be held back");
    assert.match(await seeker.locator('.msg[data-from="me"]').last().innerText(), /Sending/);
    relay.holdSends = false;

    // the listener writes while the seeker's page reloads
    await Promise.all([
      seeker.reload(),
      say(desk, "l2: written while the seeker reloads"),
    ]);
    expected.push(["me", "s2: sent just before the reload"]);
    expected.push(["them", "l2: written while the seeker reloads"]);
    // the order between s2 and l2 can differ on the two sides; compare each side's own order
    await until(async () => (await transcript(seeker)).length === 4, T, "four messages at the seeker");
    await until(async () => (await transcript(desk)).length === 4, T, "four messages at the listener");
    const seekerRows = await transcript(seeker);
    const deskRows = await transcript(desk);
    assert.deepEqual(seekerRows.slice(0, 3), expected.slice(0, 3), "the seeker kept its transcript across the reload");
    assert.deepEqual(new Set(seekerRows.map(String)), new Set(expected.map(String)), "nothing lost or repeated at the seeker");
    assert.deepEqual(new Set(deskRows.map(String)), new Set(flip(expected).map(String)), "nothing lost or repeated at the listener");
    expected.length = 0;
    expected.push(...seekerRows);
    await expectTranscript(desk, deskRows, "the listener's view stays as it is");

    assert.equal(await safetyCode(seeker), codeBefore, "the same key pair after the reload");

    // after the reload, both directions still work
    await say(seeker, "s3: after the reload");
    await say(desk, "l3: I see it");
    await until(async () => (await transcript(seeker)).length === 6 && (await transcript(desk)).length === 6, T, "six messages");
    const after3 = await transcript(seeker);
    assert.deepEqual(after3.slice(0, 4), expected);
    assert.deepEqual(new Set(after3.slice(4).map(String)), new Set([["me", "s3: after the reload"], ["them", "l3: I see it"]].map(String)));
    expected.length = 0;
    expected.push(...after3);
    const deskAfter3 = await transcript(desk);

    // the network drops the relay connection: reconnect, resume, nothing lost
    const before = relay.sockets.length;
    for (const ws of relay.sockets) ws.close({ code: 4000, reason: "network drop" });
    await say(desk, "l4: while the seeker was cut off");
    await until(() => relay.sockets.length > before, T, "the seeker to reconnect to the relay");
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
    await until(async () => (await transcript(seeker)).length === 10 && (await transcript(desk)).length === 10, T, "ten messages");
    const finalSeeker = await transcript(seeker);
    const finalDesk = await transcript(desk);
    assert.deepEqual(finalSeeker.slice(0, 8), expected);
    assert.deepEqual(finalDesk.slice(0, 8), deskRows2);
    assert.deepEqual(new Set(finalSeeker.slice(8).map(String)), new Set([["them", "l5: after my reload"], ["me", "s5: still here"]].map(String)));
    assert.equal(await safetyCode(desk), codeBefore, "the listener kept its key pair too");
    for (const rows of [finalSeeker, finalDesk]) {
      const texts = rows.map((r) => r[1]);
      assert.equal(new Set(texts).size, texts.length, "no message shown twice");
    }
    assert.deepEqual(stack.pageErrors, []);
    await context.close();
  });
});

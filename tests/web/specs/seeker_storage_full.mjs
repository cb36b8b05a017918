// A seeker's tab storage fills up in the middle of a chat (sessionStorage holds about 5 MB per
// tab). The page says so once, keeps what a reload cannot do without (keys, sequence numbers,
// unsent messages and the newest lines), and after a reload its next message still reaches the
// listener: no sequence number is used twice, nothing is lost or shown twice. Before that, the
// seeker joins the relay first and simply waits for the listener's key (no reconnecting).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, until } from "../harness.mjs";

const T = 15000;
const LONG = 3500;      // characters of each long message (the message box takes 4,000)
const ROOM = 9000;      // characters left free in the seeker's tab storage: two long ones fit, three do not

async function transcript(page) {
  return page.locator('[role="log"][aria-label="Conversation"]:visible .msg').evaluateAll((els) =>
    els.map((el) => [el.dataset.from, el.querySelector(".msg-text").textContent]));
}

async function expectTranscript(page, expected, what) {
  let last;
  await until(async () => {
    last = await transcript(page);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, T, what).catch((e) => assert.deepEqual(last?.map(([f, t]) => [f, t.slice(0, 40)]),
                                            expected.map(([f, t]) => [f, t.slice(0, 40)]), `${what} (${e.message})`));
}

async function say(box, text) {
  await box.fill(text);
  await box.press("Enter");
}

describe("a seeker whose tab storage is full", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Noor", topics: ["loneliness"], languages: ["en"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("keeps the chat going across a reload without reusing a sequence number", { timeout: 90000 }, async () => {
    const browser = await stack.browser();
    const seeker = await (await browser.newContext()).newPage();
    const desk = await (await browser.newContext()).newPage();
    for (const p of [seeker, desk]) p.on("pageerror", (e) => stack.pageErrors.push(e.message));
    let seekerRelaySockets = 0;
    seeker.on("websocket", (ws) => { if (new URL(ws.url()).pathname === "/v1/relay") seekerRelaySockets += 1; });
    // The listener's relay frames wait here until `gate.open`, so the seeker is first in the chat.
    const gate = { open: false, held: [] };
    await desk.routeWebSocket((url) => url.pathname === "/v1/relay", (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => { if (gate.open) server.send(m); else gate.held.push(() => server.send(m)); });
      server.onMessage((m) => ws.send(m));
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => ws.close({ code, reason }));
    });

    await desk.goto(new URL("/listener.html", stack.webUrl).href);
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    await seeker.goto(stack.webUrl);
    await seeker.getByLabel("Topic").selectOption("loneliness");
    await seeker.getByRole("button", { name: "Talk to someone" }).click();
    await desk.getByRole("region", { name: "New chat request" }).getByRole("button", { name: "Accept" }).click();

    // the seeker waits for the listener's key on its one relay connection
    await seeker.getByText("Waiting for the listener to join…").waitFor({ timeout: T });
    const waitingSince = Date.now();
    await until(() => Date.now() > waitingSince + 4000, 6000, "four seconds of waiting");
    assert.equal(seekerRelaySockets, 1, "the seeker waits for the key instead of reconnecting");
    gate.open = true;
    for (const send of gate.held.splice(0)) send();

    const sBox = seeker.getByRole("textbox", { name: "Message" });
    const lBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });
    await say(sBox, "s1: hello");
    await say(lBox, "l1: hello, I'm here");
    await expectTranscript(seeker, [["me", "s1: hello"], ["them", "l1: hello, I'm here"]], "the first exchange");
    assert.equal(seekerRelaySockets, 1);

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
    for (const text of [L1, L2, L3]) await say(lBox, text);
    await expectTranscript(seeker, [["me", "s1: hello"], ["them", "l1: hello, I'm here"], ["them", L1], ["them", L2], ["them", L3]],
                           "the long messages at the seeker");
    await seeker.getByRole("alert").filter({ hasText: "out of room" }).waitFor({ timeout: T });

    await say(sBox, "s2: the room is full");
    await desk.getByRole("tabpanel").locator(".msg").filter({ hasText: "s2: the room is full" }).waitFor({ timeout: T });
    // the counters made it into storage even though the whole transcript does not fit
    await until(() => seeker.evaluate(() => {
      const key = Object.keys(sessionStorage).find((k) => k.startsWith("wl.chat."));
      const s = key && JSON.parse(sessionStorage.getItem(key));
      return s && s.nextSeq === 3 && s.unacked.length === 0;
    }), T, "the stored next seq to be 3 with nothing unacknowledged");

    await seeker.reload();
    // the newest lines came back (the oldest did not fit), and nothing twice
    await expectTranscript(seeker, [["them", L2], ["them", L3], ["me", "s2: the room is full"]], "the seeker after the reload");
    await say(sBox, "s3: after the reload");
    const deskExpected = [["them", "s1: hello"], ["me", "l1: hello, I'm here"], ["me", L1], ["me", L2], ["me", L3],
                          ["them", "s2: the room is full"], ["them", "s3: after the reload"]];
    await expectTranscript(desk, deskExpected, "the listener gets the message sent after the reload");
    await say(lBox, "l2: still here");
    await expectTranscript(seeker, [["them", L2], ["them", L3], ["me", "s2: the room is full"], ["me", "s3: after the reload"],
                                    ["them", "l2: still here"]], "the seeker after the reload");
    assert.deepEqual(stack.pageErrors, []);
  });
});

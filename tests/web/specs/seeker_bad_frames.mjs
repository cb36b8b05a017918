// Broken, hostile or surprising frames from either service never crash the page and never show
// as messages: garbage JSON, wrong types, replies nobody asked for, a forged message, a message
// far ahead of its turn, a swapped key. The chat carries on afterwards, exactly once and in order.
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

describe("a seeker's page fed bad frames", () => {
  let stack;
  let listener;
  before(async () => {
    stack = await startStack();
    listener = await stack.createListener({ name: "Eli", topics: ["work"], languages: ["en"] });
  }, { timeout: 60000 });
  after(async () => { await stack?.stop(); }, { timeout: 30000 });

  it("drops them and keeps the chat going", { timeout: 90000 }, async () => {
    const browser = await stack.browser();
    const seeker = await (await browser.newContext()).newPage();
    const errors = [];
    seeker.on("pageerror", (e) => errors.push(e.message));
    const routes = { matchmaker: null, relay: null };
    await seeker.routeWebSocket((url) => url.pathname === "/v1/ws" || url.pathname === "/v1/relay", (ws) => {
      const server = ws.connectToServer();
      routes[new URL(ws.url()).pathname === "/v1/ws" ? "matchmaker" : "relay"] = ws;
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => ws.send(m));
      ws.onClose((code, reason) => server.close({ code, reason }));
      server.onClose((code, reason) => ws.close({ code, reason }));
    });
    await seeker.goto(stack.webUrl);
    const desk = await stack.open("/listener.html");
    await desk.getByLabel("Listener token").fill(listener.token);
    await desk.getByRole("button", { name: "Sign in" }).click();
    await desk.getByRole("switch", { name: "Available" }).click();
    await seeker.getByLabel("Topic").selectOption("work");
    await seeker.getByRole("button", { name: "Talk to someone" }).click();

    // while waiting: junk from the matchmaker
    await seeker.getByRole("status").filter({ hasText: /in line/ }).waitFor({ timeout: T });
    for (const junk of ["not json", "[]", "null", "42", '{"queueUpdate":"x"}', '{"queueUpdate":{"position":"lots"}}',
                        '{"requestId":"nobody-asked","ok":{}}', '{"error":{"code":"INTERNAL"}}', '{"chatEnded":{"sessionId":7}}',
                        '{"chatStarted":{}}', '{"offer":{"offerId":"x"}}', '{"seekerWelcome":{"state":"IN_CHAT"}}'])
      routes.matchmaker.send(junk);

    await desk.getByRole("region", { name: "New chat request" }).getByRole("button", { name: "Accept" }).click();
    const sBox = seeker.getByRole("textbox", { name: "Message" });
    const lBox = desk.getByRole("tabpanel").getByRole("textbox", { name: "Message" });
    await sBox.fill("s1"); await sBox.press("Enter");
    await expectTranscript(desk, [["them", "s1"]], "s1 at the listener");
    await lBox.fill("l1"); await lBox.press("Enter");
    await expectTranscript(seeker, [["me", "s1"], ["them", "l1"]], "the first exchange");

    // junk from the relay: nothing of it may show as a message
    const junkKey = Buffer.alloc(32, 9).toString("base64");
    for (const junk of ["garbage", '{"deliver":"x"}', '{"deliver":{"seq":"1","ciphertext":"@@@"}}',
                        '{"deliver":{"from":"LISTENER","seq":"1","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}',
                        '{"deliver":{"from":"LISTENER","seq":"99","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}',
                        '{"peerKey":{"publicKey":"AAAA"}}', `{"peerKey":{"publicKey":"${junkKey}"}}`,
                        '{"peerRead":{"through":"x"}}', '{"peerTyping":null}', '{"requestId":"c999","ack":{"seq":"5"}}',
                        '{"deliver":{"from":"LISTENER","seq":"2","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}'])
      routes.relay.send(junk);
    await seeker.getByRole("alert").filter({ hasText: "could not be verified" }).waitFor({ timeout: T });

    // the real seq 2 still arrives, once; the forged one and the one far ahead never show
    await lBox.fill("l2"); await lBox.press("Enter");
    await sBox.fill("s2"); await sBox.press("Enter");
    await until(async () => (await transcript(seeker)).length === 4, T, "four messages at the seeker");
    const rows = await transcript(seeker);
    assert.deepEqual(rows.slice(0, 2), [["me", "s1"], ["them", "l1"]]);
    assert.deepEqual(new Set(rows.slice(2).map(String)), new Set([["them", "l2"], ["me", "s2"]].map(String)));
    await until(async () => (await transcript(desk)).length === 4, T, "four messages at the listener");
    const deskRows = await transcript(desk);
    assert.deepEqual(deskRows.slice(0, 2), [["them", "s1"], ["me", "l1"]]);
    assert.deepEqual(new Set(deskRows.slice(2).map(String)), new Set([["me", "l2"], ["them", "s2"]].map(String)));
    // the safety code is still that of the real keys
    await seeker.getByRole("button", { name: "Show safety code" }).click();
    await desk.getByRole("tabpanel").getByRole("button", { name: "Show safety code" }).click();
    assert.equal((await seeker.getByTestId("safety-code").innerText()).trim(),
                 (await desk.getByRole("tabpanel").getByTestId("safety-code").innerText()).trim());
    assert.deepEqual(errors, [], "no uncaught errors in the page");
    assert.deepEqual(stack.pageErrors, []);
  });
});

// The steps the web specs share, so that each spec reads as the story it proves: a stack for a
// suite, a page for one person, a seeker asking for a chat, a listener signing in, going available
// and accepting, messages going both ways, the safety code, and WebSockets routed through the
// test. Every step waits for what the page shows, with the deadline T; none of them sleeps.
// (Not under specs/: run.mjs runs every file there.)
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { startStack, until, DEFAULT_LOCALE } from "./harness.mjs";
import { anyLanguage } from "./languages.mjs";

export const T = 15000;
const SAFETY_CODE = /^\d{5}( \d{5}){5}$/;

// ---- the stack ---------------------------------------------------------------------------------

// Call inside describe(): starts a stack (startStack(opts)) before the suite's tests and stops it
// after them. Returns an object that holds `stack`, and whatever `setup(stack)` returns (the
// accounts the suite needs), once the tests run.
export function withStack(opts = {}, setup = async () => ({})) {
  const suite = {};
  before(async () => {
    suite.stack = await startStack(opts);
    Object.assign(suite, await setup(suite.stack));
  }, { timeout: 60000 });
  after(async () => { await suite.stack?.stop(); }, { timeout: 30000 });
  return suite;
}

// ---- pages -------------------------------------------------------------------------------------

// The crisis lines the seeker page shows for language `tag` in a browser of DEFAULT_LOCALE (or
// in `region`): that region's, when the language lists it, else the language's general ones.
export function crisisLines(stack, tag, region = DEFAULT_LOCALE.split("-")[1]) {
  const l = stack.catalogue.languages.find((x) => x.tag === tag);
  const r = (l.regions || []).find((x) => x.region === region);
  return r ? r.crisisResources : l.crisisResources;
}

// A page in a fresh browser context (one person) that has loaded nothing yet, so that routes can
// be set up first; load it with visit(). Uncaught errors land in stack.pageErrors, as with
// stack.open().
export async function blankPage(stack) {
  const browser = await stack.browser();
  const page = await (await browser.newContext({ locale: DEFAULT_LOCALE })).newPage();
  page.on("pageerror", (e) => stack.pageErrors.push(e.message));
  return page;
}

export async function visit(stack, page, pathname = "/") {
  await page.goto(new URL(pathname, stack.webUrl).href);
  return page;
}

// What a browser's "Duplicate tab" makes of `page`: a new page in the same context (the same
// IndexedDB) that starts with a copy of its sessionStorage, loaded at `pathname`.
export async function duplicateTab(stack, page, pathname) {
  const stored = await page.evaluate(() => Object.entries(sessionStorage));
  const copy = await page.context().newPage();
  await copy.addInitScript((entries) => {
    if (sessionStorage.length === 0) for (const [k, v] of entries) sessionStorage.setItem(k, v);
  }, stored);
  copy.on("pageerror", (e) => stack.pageErrors.push(e.message));
  return visit(stack, copy, pathname);
}

// Routes the WebSockets `page` opens to `pathname` through the test, both ways. Returns the
// page-side sockets in the order they were opened: close one to cut the connection, or send on it
// to play the service. `fromPage(message, forward, ws)` and `fromService(message, forward, ws)`
// may hold back or drop what either side sends on socket `ws`.
export async function routeSockets(page, pathname, { fromPage, fromService } = {}) {
  const sockets = [];
  await page.routeWebSocket((url) => url.pathname === pathname, (ws) => {
    const server = ws.connectToServer();
    sockets.push(ws);
    ws.onMessage((m) => (fromPage ? fromPage(m, () => server.send(m), ws) : server.send(m)));
    server.onMessage((m) => (fromService ? fromService(m, () => ws.send(m), ws) : ws.send(m)));
    ws.onClose((code, reason) => server.close({ code, reason }));
    server.onClose((code, reason) => ws.close({ code, reason }));
  });
  return sockets;
}

// Counts the WebSockets `page` opens to `pathname`; read `.opened` for the count so far.
export function countSockets(page, pathname) {
  const counter = { opened: 0 };
  page.on("websocket", (ws) => { if (new URL(ws.url()).pathname === pathname) counter.opened += 1; });
  return counter;
}

// ---- the seeker --------------------------------------------------------------------------------

// On the seeker's page: chooses the topic and language (the page's own choice where left out) and
// presses "Talk to someone". The page speaks the language chosen, so the seeker's steps find their
// controls by their words in any language.
export async function askForChat(seeker, { topic, language } = {}) {
  if (topic) await seeker.getByLabel(anyLanguage("seeker.topic")).selectOption(topic);
  if (language) await seeker.getByLabel(anyLanguage("seeker.language")).selectOption(language);
  await seeker.getByRole("button", { name: anyLanguage("seeker.talk") }).click();
}

// Waits until the seeker's page says it is number `place` in line (any number when left out).
export async function waitInLine(seeker, place) {
  const text = anyLanguage("seeker.queue.position", { position: place === undefined ? "\\d+" : String(place) }, { whole: false });
  await seeker.getByRole("status").filter({ hasText: text }).waitFor({ timeout: T });
}

// A new seeker in their own browser who asked for a chat and is waiting in line.
export async function waitingSeeker(stack, choice) {
  const seeker = await stack.open("/");
  await askForChat(seeker, choice);
  await waitInLine(seeker);
  return seeker;
}

// ---- the listener ------------------------------------------------------------------------------

export async function isOn(toggle) {
  return (await toggle.getAttribute("aria-checked")) === "true";
}

export function availableSwitch(desk) {
  return desk.getByRole("switch", { name: "Available" });
}

// Signs in on the listener page with `token`; waits for the desk when the listener's `name` is given.
export async function signInListener(desk, token, name) {
  await desk.getByLabel("Listener token").fill(token);
  await desk.getByRole("button", { name: "Sign in" }).click();
  if (name) await desk.getByRole("heading", { name }).waitFor({ timeout: T });
}

// Turns Available on and waits until the switch says so.
export async function goAvailable(desk) {
  const available = availableSwitch(desk);
  await available.click();
  await until(() => isOn(available), T, "Available to switch on");
}

// A listener signed in on their desk and available: in a browser of their own, or on `page` (a
// blankPage whose routes are set up).
export async function availableListener(stack, listener, { page, name } = {}) {
  const desk = page ? await visit(stack, page, "/listener.html") : await stack.open("/listener.html");
  await signInListener(desk, listener.token, name);
  await goAvailable(desk);
  return desk;
}

export function offerOn(desk) {
  return desk.getByRole("region", { name: "New chat request" });
}

export async function acceptOffer(desk) {
  await offerOn(desk).getByRole("button", { name: "Accept" }).click();
}

// ---- a chat ------------------------------------------------------------------------------------

// The message box of the chat on screen (the seeker's, or the listener's selected tab).
export function messageBox(page) {
  return page.getByRole("textbox", { name: anyLanguage("chat.message") }).filter({ visible: true });
}

// Listener `desk` accepts the offer of `seeker`'s request; both are in the chat.
export async function acceptAndChat(seeker, desk) {
  await acceptOffer(desk);
  await messageBox(seeker).waitFor({ timeout: T });
  await messageBox(desk).waitFor({ timeout: T });
}

// Writes `text` in the chat on screen and sends it with Enter.
export async function say(page, text) {
  const box = messageBox(page);
  await box.fill(text);
  await box.press("Enter");
}

// Waits until `page` shows a message containing `text` from `from` ("them" or "me"; either when
// left out).
export async function waitForMessage(page, text, from) {
  const msg = page.locator(from ? `.msg[data-from="${from}"]` : ".msg");
  await msg.filter({ hasText: text }).waitFor({ timeout: T });
}

// [data-from, text] of every message in the visible conversation log of `page`.
export async function transcript(page) {
  return page.locator('[role="log"][data-i18n-aria-label="chat.conversation"]:visible .msg').evaluateAll((els) =>
    els.map((el) => [el.dataset.from, el.querySelector(".msg-text").textContent]));
}

// Long texts cut short, so that a failure's diff stays readable.
function brief(rows) {
  return rows?.map(([from, text]) => [from, text.length > 80 ? `${text.slice(0, 40)}…(${text.length})` : text]);
}

// Waits until the transcript of `page` is exactly `expected`.
export async function expectTranscript(page, expected, what) {
  let last;
  await until(async () => {
    last = await transcript(page);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, T, `${what}: ${JSON.stringify(brief(expected))}`).catch((e) => {
    assert.deepEqual(brief(last), brief(expected), `${what} (${e.message})`);
    throw e;
  });
}

// Waits until the transcript of `page` is `settled` followed by `crossing` in either order (messages
// both sides wrote at the same time may cross), each exactly once; returns it.
export async function expectTranscriptEnding(page, settled, crossing, what) {
  const n = settled.length + crossing.length;
  await until(async () => (await transcript(page)).length === n, T, `${what}: ${n} messages`);
  const rows = await transcript(page);
  assert.deepEqual(rows.slice(0, settled.length), settled, `${what}: the messages before`);
  assert.deepEqual(new Set(rows.slice(settled.length).map(String)), new Set(crossing.map(String)),
                   `${what}: the crossing messages, once each`);
  return rows;
}

// The other side's view of a transcript.
export function flip(rows) {
  return rows.map(([from, text]) => [from === "me" ? "them" : "me", text]);
}

// Ends the chat on screen, confirming when asked.
export async function endChat(page) {
  await page.getByRole("button", { name: anyLanguage("chat.end") }).filter({ visible: true }).click();
  await page.getByRole("button", { name: anyLanguage("chat.end.yes") }).filter({ visible: true }).click();
}

// Shows the safety code of the chat on screen (if it is not shown already) and returns it once it
// is six groups of five digits.
export async function safetyCode(page) {
  const button = page.getByRole("button", { name: anyLanguage("chat.code.show") }).filter({ visible: true });
  if (await button.count()) await button.click();
  const code = page.getByTestId("safety-code").filter({ visible: true });
  await until(async () => SAFETY_CODE.test((await code.innerText()).trim()), T, "a safety code");
  return (await code.innerText()).trim();
}

// The listener reports the person of the chat on screen: ticks the message `tick` (if given),
// says `reason` (if given), blocks them if `block`, and sends.
export async function reportFromDesk(desk, { tick, reason, block } = {}) {
  await desk.getByRole("button", { name: "Report or block this person" }).filter({ visible: true }).click();
  const form = desk.getByRole("form", { name: "Report this person to the safety team" });
  await form.waitFor({ timeout: T });
  if (tick) await form.getByRole("checkbox", { name: tick, exact: true }).check();
  if (reason) await form.getByLabel("What happened?").fill(reason);
  if (block) await form.getByRole("checkbox", { name: /^Block this person/ }).check();
  await form.getByRole("button", { name: "Send report" }).click();
}

// ---- the supervisor ----------------------------------------------------------------------------

export async function signInSupervisor(page, token) {
  await page.getByLabel("Supervisor token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

// ---- accessibility -----------------------------------------------------------------------------

// axe-core (pinned in package.json) checks the page as it is now against the rules of WCAG 2.1 A
// and AA. It is evaluated through the browser's debugging protocol, so the page's CSP (no inline
// scripts) does not stop it, and the page itself never loads it.
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
let axeSource = null;

// The violations axe-core finds on `page`, as "rule (impact): selector" lines, so that a failure
// says what to fix and where; [] when there are none.
export async function axeViolations(page) {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  return page.evaluate(async (tags) => {
    const { violations } = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
    return violations.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(" ")}`));
  }, AXE_TAGS);
}

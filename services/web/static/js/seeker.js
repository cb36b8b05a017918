// The seeker's page: choose a topic and language (and say if this is a crisis), wait in line,
// chat end to end encrypted, then rate, block or report. What a reload must keep (the resume
// token, the current step, the chat's keys and messages) is in this tab's sessionStorage only.

import { Matchmaker, num } from "./matchmaker.js";
import { RelayChat, UNKNOWN_END, forgetChat, storedChatIds } from "./chat.js";
import { x25519Supported } from "./e2e.js";
import { fillChecklist, ticked, reportProblem, reportBody, tooLong } from "./report.js";
import { $, h, loadConfigOrExplain, kindError, show, say, readTabState, writeTabState, crisisList, ChatView, topicName } from "./ui.js";
import { t, localize, unlocalize, setLanguage, startLanguage, storedLanguage, browserLanguages, matchLanguage, onLanguage, language as uiLanguage } from "./i18n.js";

const STORE = "wl.seeker";

let cfg = null;
let mm = null;
let chat = null;
let supported = false;
let afterTranscript = [];
let unseen = 0;
startLanguage();  // before anything is built: this tab's choice, else the browser's
const view = new ChatView({ them: "listener", onEnd: endChat });

let state = readTabState(STORE);
function save(patch) {
  state = { ...state, ...patch };
  writeTabState(STORE, state);
}

// ---- screens -------------------------------------------------------------------------------

const screens = ["start", "waiting", "chat", "after"];
let current = "";
function showScreen(name, focus = true) {
  for (const s of screens) $(`#${s}`).hidden = s !== name;
  const changed = current !== name;
  current = name;
  if (!changed || !focus) return;
  if (name === "chat") { view.input.focus(); return; }
  const title = $(`#${name}-title`);
  title.tabIndex = -1;
  title.focus();
}

// The line at the top of the page about the connection: this page's own (lost, reconnecting),
// or Warmline's (the matchmaker or the relay lost its database: requests wait, nothing is lost).
let connText = "";
const degraded = { matchmaker: false, relay: false };
function setConn(key) { connText = key || ""; renderConn(); }
function setDegraded(who, on) { degraded[who] = on; renderConn(); }
function renderConn() {
  const key = connText || (degraded.matchmaker || degraded.relay ? "seeker.conn.degraded" : "");
  const el = $("#conn-status");
  if (key) localize(el, key); else { unlocalize(el); el.textContent = ""; }
}

// ---- start ---------------------------------------------------------------------------------

function fillChoices() {
  const topic = $("#topic");
  const language = $("#language");
  topic.replaceChildren(...cfg.topics.map((x) => h("option", { value: x.id, text: topicName(cfg, x.id) })));
  language.replaceChildren(...cfg.languages.map((l) => h("option", { value: l.tag, text: l.name, lang: l.tag })));
  if (state.topic && cfg.topics.some((t) => t.id === state.topic)) topic.value = state.topic;
  if (state.language && cfg.languages.some((l) => l.tag === state.language)) language.value = state.language;
  else {
    // this tab's choice of the interface's language, else the browser's
    const wanted = storedLanguage() ? [storedLanguage(), ...browserLanguages()] : browserLanguages();
    const guess = matchLanguage(cfg.languages.map((l) => l.tag), wanted);
    if (guess) language.value = guess;
  }
  setLanguage(language.value, { keep: false });
  fillRegions();
  $("#crisis").checked = !!state.crisis;
  renderCrisis();
  renderUrgent();
}

// "Where are you?": the regions the chosen language lists crisis lines for (named by the browser
// in the interface's language), and "Somewhere else". The earlier choice, else the region of the
// browser's locale (en-GB: GB) when listed, else somewhere else.
function fillRegions() {
  const select = $("#region");
  const l = cfg.languages.find((x) => x.tag === $("#language").value);
  const regions = l && Array.isArray(l.regions) ? l.regions : [];
  let names = null;
  try { names = new Intl.DisplayNames([uiLanguage()], { type: "region" }); } catch { /* the catalogue's names */ }
  const name = (r) => { try { return (names && names.of(r.region)) || r.name || r.region; } catch { return r.name || r.region; } };
  select.replaceChildren(...regions.map((r) => h("option", { value: r.region, text: name(r) })),
                         h("option", { value: "", i18n: "seeker.region.elsewhere" }));
  const listed = (code) => regions.some((r) => r.region === code);
  const fromBrowser = browserLanguages().map((tag) => (tag.split("-")[1] || "").toUpperCase()).find(listed);
  select.value = state.region !== undefined && (state.region === "" || listed(state.region)) ? state.region : (fromBrowser || "");
  select.closest(".field").hidden = regions.length === 0;
}

// The crisis lines for a speaker of `tag` in `region` (this page's choice unless given): the
// region's when the language lists it, else the language's general ones (docs/protocol.md 4.2).
function resourcesFor(tag, region = $("#region").value) {
  const l = cfg.languages.find((x) => x.tag === tag);
  if (!l) return [];
  const r = region && Array.isArray(l.regions) ? l.regions.find((x) => x.region === region) : null;
  if (r && Array.isArray(r.crisisResources)) return r.crisisResources;
  return Array.isArray(l.crisisResources) ? l.crisisResources : [];
}

// "Need urgent help?" on every screen: the crisis lines of the chosen language (or of the
// browser's, before one is chosen).
function renderUrgent() {
  const res = resourcesFor($("#language").value);
  $("#urgent-resources").replaceChildren(res.length ? crisisList(res)
    : h("p", { i18n: "seeker.callEmergency" }));
}

// Leaves at once for a neutral page, for someone who must not be seen here: what this tab kept
// (sessionStorage: the resume token, the chat's counters and transcript; the chat's private key
// in IndexedDB) is cleared first, and the page is replaced, so Back does not return to it. The
// request or chat is not ended by a message: it is left, and the matchmaker and relay handle a
// vanished seeker as a dropped connection (the grace period, then the listener is told).
export const QUICK_EXIT_URL = "https://www.google.com/";
let lastEscape = 0;
function quickExit() {
  try { if (chat) chat.stop(); } catch { /* leaving anyway */ }
  try { if (mm) mm.close(); } catch { /* leaving anyway */ }
  const forget = [];
  for (const id of storedChatIds()) forget.push(forgetChat(id));
  if (chat) forget.push(forgetChat(chat.sessionId));
  try { sessionStorage.clear(); } catch { /* nothing kept */ }
  // the keys' deletion is started; the page does not wait more than a moment for it
  Promise.race([Promise.allSettled(forget), new Promise((r) => setTimeout(r, 150))])
    .finally(() => location.replace(QUICK_EXIT_URL));
}
function onKeyForQuickExit(ev) {
  if (ev.key !== "Escape") return;
  const now = Date.now();
  if (now - lastEscape < 1000) { ev.preventDefault(); quickExit(); return; }
  lastEscape = now;
}

function renderCrisis() {
  const on = $("#crisis").checked;
  const box = $("#crisis-box");
  box.hidden = !on;
  if (on) {
    const res = resourcesFor($("#language").value);
    $("#crisis-resources").replaceChildren(res.length ? crisisList(res)
      : h("p", { i18n: "seeker.callEmergency" }));
  }
}

async function requestChat(ev) {
  ev.preventDefault();
  const err = $("#request-error");
  show(err, "");
  if (!supported) {
    say(err, "seeker.unsupported");
    return;
  }
  const topic = $("#topic").value;
  const language = $("#language").value;
  const region = $("#region").value;
  const crisis = $("#crisis").checked;
  if (!topic || !language) { say(err, "seeker.chooseBoth"); return; }
  save({ topic, language, crisis, region });
  show($("#waiting-note"), "");
  const button = $("#talk");
  button.disabled = true;
  try {
    connect();
    await mm.whenReady();
    const body = { topic, language };
    if (crisis) body.crisis = true;
    if (region) body.region = region;
    const reply = await mm.call({ requestChat: body });
    if (current === "chat" || current === "after") return;
    const q = reply.requestQueued || {};
    save({ phase: "waiting" });
    showWaiting(crisis ? (q.crisisResources && q.crisisResources.length ? q.crisisResources : resourcesFor(language)) : null);
    renderQueue(num(q.position), num(q.estimatedWaitS), q);
  } catch (e) {
    show(err, kindError(e));
  } finally {
    button.disabled = false;
  }
}

// ---- waiting -------------------------------------------------------------------------------

function showWaiting(resources) {
  const box = $("#waiting-crisis");
  if (resources) {
    $("#waiting-crisis-resources").replaceChildren(crisisList(resources));
    box.hidden = false;
  } else if (!state.crisis) {
    box.hidden = true;
  }
  show($("#waiting-error"), "");
  showScreen("waiting");
}

// q: the RequestQueued or QueueUpdate. With noListenerNow nobody who is free right now may take
// this request (nobody covers it, or each who does has just declined or missed it): no estimate
// can come true then, so the page says so plainly and shows the crisis lines, crisis or not.
// With heldS the request is on hold (listeners reported this person or their network): it has
// no place yet, and the page says plainly when it will be passed on, with the crisis lines.
function renderQueue(position, waitS, q = {}) {
  const none = q.noListenerNow === true;
  const held = num(q.heldS);
  if (held > 0) localize($("#queue-position"), "seeker.queue.held");
  else if (position > 0) localize($("#queue-position"), "seeker.queue.position", { position });
  else localize($("#queue-position"), "seeker.queue.asking");
  renderWaitingCrisis(none || held > 0, q.crisisResources);
  let wait;
  if (held > 0) {
    wait = ["seeker.queue.heldWait", { count: Math.max(1, Math.round(held / 60)) }];
  } else if (none) {
    wait = ["seeker.queue.noListener"];
  } else if (!waitS) wait = ["seeker.queue.noEstimate"];
  else if (waitS < 60) wait = ["seeker.queue.underMinute"];
  else {
    const m = Math.round(waitS / 60);
    wait = ["seeker.queue.minutes", { count: m }];
  }
  localize($("#queue-wait"), ...wait);
}

// The crisis lines on the waiting screen: for a request in crisis all along, and for any request
// while no listener is free for it (from the message, or else the catalogue).
function renderWaitingCrisis(none, resources) {
  const box = $("#waiting-crisis");
  const show = none || !!state.crisis;
  if (show && (none || box.hidden)) {
    const res = Array.isArray(resources) && resources.length ? resources : resourcesFor(state.language, state.region);
    $("#waiting-crisis-resources").replaceChildren(res.length ? crisisList(res)
      : h("p", { i18n: "seeker.inDangerCall" }));
  }
  box.hidden = !show;
}

// Back in line after a chat whose listener was lost: the request is open again, at the front.
function backToLine(text) {
  save({ phase: "waiting" });
  showWaiting(state.crisis ? resourcesFor(state.language, state.region) : null);
  renderQueue(0, 0);
  if (text) show($("#waiting-note"), text);
  else say($("#waiting-note"), "end.requeued");
}

async function stopWaiting() {
  const err = $("#waiting-error");
  const button = $("#stop-waiting");
  show(err, "");
  button.disabled = true;  // a second press would only be told there is nothing to cancel
  try {
    await mm.call({ cancelRequest: {} });
    save({ phase: "idle" });
    show($("#waiting-note"), "");
    showScreen("start");
  } catch (e) {
    show(err, kindError(e));
  } finally {
    button.disabled = false;
  }
}

// ---- the chat ------------------------------------------------------------------------------

let opening = null;  // {sessionId, promise} while a chat's keys are being loaded or made

async function startChat(started) {
  if (!started || !started.sessionId) return;
  if (opening && opening.sessionId === started.sessionId) {
    await opening.promise;
  }
  if (chat && chat.sessionId === started.sessionId) {
    // The same chat again (a resume, a resync): only its fresh ticket is new. An ended chat is
    // never reopened: that would make new keys for it.
    if (started.relayTicket && !chat.ended) chat.setTicket(started.relayTicket, started.relayUrl);
    return;
  }
  if (chat && !chat.ended) chat.stop();
  // A different chat than the one stored means the stored one is over.
  for (const id of storedChatIds()) if (id !== started.sessionId) forgetChat(id);
  save({ phase: "chat", sessionId: started.sessionId, rated: false, reported: false });
  show($("#waiting-note"), "");
  let c = null;
  const promise = RelayChat.open({ ...started, role: "SEEKER" }, (type, detail) => onChatEvent(c, type, detail));
  opening = { sessionId: started.sessionId, promise };
  try {
    c = await promise;
  } finally {
    opening = null;
  }
  chat = c;
  view.attach(c);
  view.setActive(true);
  $("#chat-view").replaceChildren(view.root);
  showScreen("chat");
  c.connect(true);
}

function chatFailed() {
  say($("#page-error"), "seeker.chatFailed");
}

function onChatEvent(c, type, detail) {
  if (c !== chat) return;
  view.handle(type, detail);
  if (type === "needticket") {
    // A seeker gets a fresh ticket by resuming on the matchmaker.
    if (mm) mm.reconnectNow();
  } else if (type === "ended") {
    setDegraded("relay", false);  // that relay is no concern of this page any more
    if (detail.requeued) {
      // The listener was lost: not the after-chat screen, but back in line, at the front.
      c.transcript.length = 0;
      backToLine(detail.text);
      return;
    }
    // what a report may quote: the two people's messages, not Warmline's notes
    afterTranscript = c.transcript.filter((e) => e.from === "me" || e.from === "them");
    showAfter(detail.text);
  } else if (type === "service") {
    setDegraded("relay", detail.degraded);
  } else if (type === "message" && detail.entry.from !== "me" && document.visibilityState !== "visible") {
    unseen += 1;
    document.title = `(${unseen}) Warmline`;
  }
}

async function endChat() {
  if (!chat || chat.ended) return;
  const ok = await chat.end();
  if (ok) return;
  try {
    await mm.call({ endChat: { sessionId: chat.sessionId } });
  } catch (e) {
    if (e.code === "NOT_FOUND") { chat.finish(undefined, UNKNOWN_END); return; }
    view.handle("notice", { text: kindError(e) });
  }
}

// ---- after the chat ------------------------------------------------------------------------

function showAfter(reason) {
  save({ phase: "after" });
  $("#after-reason").textContent = reason || "";
  const form = $("#feedback-form");
  form.reset();
  for (const el of form.elements) el.disabled = !!state.rated;
  show($("#feedback-error"), "");
  if (state.rated) say($("#feedback-done"), "seeker.feedback.thanks"); else show($("#feedback-done"), "");
  buildReport();
  showScreen("after");
}

function buildReport() {
  fillChecklist($("#report-messages"), afterTranscript, "seeker.report.listener");
  $("#report-empty").hidden = afterTranscript.length > 0;
  $("#report-form").hidden = true;
  $("#report-open").hidden = !!state.reported;
  $("#report-open").setAttribute("aria-expanded", "false");
  if (state.reported) say($("#report-done"), "seeker.report.thanks"); else show($("#report-done"), "");
  show($("#report-error"), "");
}

// The focused Send button is disabled once the feedback is in, which would drop focus to the
// page's start: the thanks takes it instead, so it is read out.
function feedbackDone(key) {
  const done = $("#feedback-done");
  say(done, key);
  done.tabIndex = -1;
  done.focus();
}

async function sendFeedback(ev) {
  ev.preventDefault();
  const err = $("#feedback-error");
  show(err, "");
  const picked = document.querySelector('input[name="stars"]:checked');
  if (!picked) { say(err, "seeker.feedback.stars"); return; }
  const comment = $("#comment").value.trim();
  if ([...comment].length > 500) { say(err, "seeker.feedback.long", { max: 500 }); return; }
  const body = { sessionId: state.sessionId, stars: Number(picked.value) };
  if (comment) body.comment = comment;
  if ($("#block").checked) body.blockListener = true;
  const button = $("#send-feedback");
  button.disabled = true;
  try {
    await mm.call({ rateChat: body });
    save({ rated: true });
    for (const el of $("#feedback-form").elements) el.disabled = true;
    feedbackDone(body.blockListener ? "seeker.feedback.thanksBlocked" : "seeker.feedback.thanks");
  } catch (e) {
    button.disabled = false;
    if (e.code === "WRONG_STATE" && /already been rated/.test(e.message)) {
      save({ rated: true });
      feedbackDone("seeker.feedback.already");
      return;
    }
    show(err, kindError(e));
  }
}

function openReport() {
  const form = $("#report-form");
  form.hidden = false;
  $("#report-open").setAttribute("aria-expanded", "true");
  $("#report-open").hidden = true;
  $("#report-title").tabIndex = -1;
  $("#report-title").focus();
}

async function sendReport(ev) {
  ev.preventDefault();
  const err = $("#report-error");
  show(err, "");
  const reason = $("#report-reason").value.trim();
  const picked = ticked($("#report-messages"), afterTranscript);
  const problem = reportProblem(reason, picked);
  if (problem) { say(err, ...problem); return; }
  const report = reportBody(state.sessionId, reason, picked, "SEEKER");
  if (tooLong(report)) { say(err, "seeker.report.tooLong"); return; }
  const button = $("#send-report");
  button.disabled = true;
  try {
    await mm.call({ reportChat: report });
    save({ reported: true });
    $("#report-form").hidden = true;
    say($("#report-done"), "seeker.report.thanks");
    $("#report-done").tabIndex = -1;
    $("#report-done").focus();
  } catch (e) {
    button.disabled = false;
    if (e.code === "MALFORMED_FRAME" || e.code === "TIMEOUT") {
      say(err, "seeker.report.unavailable");
    } else if (e.code === "WRONG_STATE") {
      save({ reported: true });
      show(err, e.message);
    } else {
      show(err, kindError(e));
    }
  }
}

function startOver() {
  // The last chat's words stay on this page only as long as the person may still report them.
  afterTranscript = [];
  $("#report-messages").replaceChildren();
  $("#report-reason").value = "";
  if (chat && chat.ended) { chat.transcript.length = 0; view.clearMessages(); }
  save({ phase: "idle", sessionId: "", rated: false, reported: false });
  showScreen("start");
}

// ---- the matchmaker ------------------------------------------------------------------------

function connect() {
  if (mm) { mm.start(); return; }
  mm = new Matchmaker(cfg.matchmakerUrl, { signIn, onPush, onStatus });
  mm.start();
}

async function signIn(m) {
  let reply;
  if (state.token) {
    try {
      reply = await m.request({ seekerHello: { resumeToken: state.token } }, { alone: true });
    } catch (e) {
      if (e.code !== "RESUME_FAILED") throw e;
      save({ token: "" });
      if (state.phase === "waiting" || state.phase === "chat") {
        for (const id of storedChatIds()) forgetChat(id);
        say($("#request-error"), "seeker.resumeFailed");
        save({ phase: "idle" });
        showScreen("start");
      }
    }
  }
  if (!reply) reply = await m.request({ seekerHello: {} }, { alone: true });
  const w = reply.seekerWelcome;
  if (!w) throw new Error("unexpected reply");
  if (w.resumeToken) save({ token: w.resumeToken });
  setTimeout(() => onWelcome(w), 0);
}

function onWelcome(w) {
  const s = w.state || "IDLE";
  if (s === "QUEUED" || s === "OFFERED") {
    if (chat && !chat.ended && state.phase === "chat") {
      // The chat ended while this page was not told (its listener was lost, and the request went
      // back to the front of the line): the relay's ending is the one way back into the line.
      chat.finish(undefined, "peer_lost", { lost: "LISTENER", requeued: true });
    } else if (current !== "waiting") {
      const wasInChat = state.phase === "chat";
      for (const id of storedChatIds()) forgetChat(id);
      if (wasInChat) backToLine();
      else {
        save({ phase: "waiting" });
        showWaiting(state.crisis ? resourcesFor(w.language || state.language, state.region) : null);
        renderQueue(s === "OFFERED" ? 1 : 0, 0);
      }
    }
  } else if (s === "IN_CHAT" && w.chat) {
    startChat(w.chat).catch(chatFailed);
  } else if (s === "ENDED" && w.chat) {
    if (chat && chat.sessionId === w.chat.sessionId && !chat.ended) {
      chat.finish(undefined, UNKNOWN_END);
    } else if (!chat && state.sessionId === w.chat.sessionId && (state.phase === "chat" || state.phase === "after")) {
      forgetChat(w.chat.sessionId);
      if (current !== "after") showAfter(state.phase === "chat" ? t("seeker.endedAway") : "");
    } else if (current !== "after" && current !== "chat") {
      showScreen("start");
    }
  } else {
    // IDLE
    if (state.phase === "waiting") {
      save({ phase: "idle" });
      say($("#request-error"), "seeker.placeLetGo");
      showScreen("start");
    } else if (current !== "after" && current !== "start") {
      showScreen("start");
    }
  }
}

function onPush(msg) {
  if (msg.queueUpdate) {
    const q = msg.queueUpdate;
    if (current === "waiting") renderQueue(num(q.position), num(q.estimatedWaitS), q);
  } else if (msg.chatStarted) {
    startChat(msg.chatStarted).catch(chatFailed);
  } else if (msg.chatEnded) {
    const e = msg.chatEnded;
    if (chat && chat.sessionId === e.sessionId) chat.endedElsewhere(e.endedBy, e.reason, { lost: e.lost, requeued: e.requeued === true });
  } else if (msg.service) {
    setDegraded("matchmaker", msg.service.degraded === true);
  }
}

const OFFLINE = "seeker.conn.offline";

function onStatus(s) {
  if (s.state === "reconnecting" && (current === "waiting" || current === "chat")) {
    setConn(navigator.onLine === false ? OFFLINE : "seeker.conn.lost");
  } else if (s.state === "ready") {
    // a sign-in needs the matchmaker's database: it has it (again)
    degraded.matchmaker = false;
    setConn("");
  } else if (s.state === "closed" && s.code === 4001) {
    if (chat && !chat.ended) { chat.stop(); view.handle("replaced"); }
    setConn("");
    say($("#page-error"), "seeker.replaced");
    for (const s2 of screens) $(`#${s2}`).hidden = true;
  } else if (s.state === "refused") {
    show($("#page-error"), kindError(s.error));
  }
}

// ---- start up ------------------------------------------------------------------------------

async function main() {
  $("#quick-exit").addEventListener("click", quickExit);
  document.addEventListener("keydown", onKeyForQuickExit);
  $("#crisis").addEventListener("change", renderCrisis);
  $("#language").addEventListener("change", fillRegions);
  $("#language").addEventListener("change", renderCrisis);
  $("#language").addEventListener("change", renderUrgent);
  $("#region").addEventListener("change", () => {
    save({ region: $("#region").value });
    renderCrisis();
    renderUrgent();
  });
  // the page speaks the language the seeker asks to talk in, from the moment they pick it
  $("#language").addEventListener("change", () => {
    save({ language: $("#language").value });  // the latest choice, also over a reload
    setLanguage($("#language").value);
  });
  onLanguage(() => {
    if (!cfg) return;
    for (const option of $("#topic").options) option.textContent = topicName(cfg, option.value);
    const region = $("#region").value;
    fillRegions();
    $("#region").value = region;
  });
  $("#request-form").addEventListener("submit", requestChat);
  $("#stop-waiting").addEventListener("click", stopWaiting);
  $("#feedback-form").addEventListener("submit", sendFeedback);
  $("#report-open").addEventListener("click", openReport);
  $("#report-form").addEventListener("submit", sendReport);
  $("#start-over").addEventListener("click", startOver);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { unseen = 0; document.title = "Warmline"; }
  });
  // Offline, a connection can carry nothing, and may not even notice it broke: let it go (the
  // matchmaker parks the request, so nobody is offered a seeker who is not there; it keeps its
  // place). Back online, open new ones at once.
  window.addEventListener("offline", () => {
    if (mm && !mm.stopped) mm.drop();
    if (chat && !chat.ended) chat.drop();
    if (current === "waiting" || current === "chat") setConn(OFFLINE);
  });
  window.addEventListener("online", () => {
    if (mm && !mm.stopped) {
      if (current === "waiting" || current === "chat") setConn("common.reconnecting");
      mm.reconnectNow();
    }
    if (chat && !chat.ended) chat.reconnectNow();
  });

  cfg = await loadConfigOrExplain();
  if (!cfg) return;
  supported = await x25519Supported();
  fillChoices();
  if (!supported) {
    say($("#request-error"), "seeker.unsupported");
  }
  if (state.token && supported && (state.phase === "waiting" || state.phase === "chat" || state.phase === "after")) {
    setConn("common.reconnecting");
    connect();
  } else {
    if (state.phase === "after") save({ phase: "idle" });
    showScreen("start", false);
  }
}

main();

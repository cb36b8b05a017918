// The listener's desk: sign in with the token from warmline-admin (kept in this tab's
// sessionStorage so a reload signs in again), go available or take a break, answer offers before
// their deadline, and hold several end-to-end encrypted chats at once, each in its own tab.

import { Matchmaker, num } from "./matchmaker.js";
import { RelayChat, UNKNOWN_END, forgetChat, storedChatIds } from "./chat.js";
import { x25519Supported } from "./e2e.js";
import { listenerReport } from "./report.js";
import { wellbeingText } from "./wellbeing.js";
import { SupportChat, supportKey } from "./support_chat.js";
import { $, h, loadConfigOrExplain, kindError, show, say, readTabState, writeTabState, ChatView, topicName, languageName, nextId, armSound, chime, crisisList } from "./ui.js";
import { t, localize, startLanguage, languagePicker, onLanguage, fromServer } from "./i18n.js";

const STORE = "wl.listener";
const BASE_TITLE = "Warmline";

let cfg = null;
let mm = null;
let profile = null;
let supported = false;
let extraToday = 0;
let noOffsetField = false;
let ticketFetch = null;
const offers = new Map();  // offerId -> {offer, el, countdown, accept, decline}
const chats = new Map();   // sessionId -> {chat, view, tab, panel, badge, unread, label}
let selected = "";
let chatNumber = 0;

let state = readTabState(STORE);
function save(patch) {
  state = { ...state, ...patch };
  writeTabState(STORE, state);
}

const setConn = (text) => { $("#conn-status").textContent = text || ""; };
const announce = (text) => { const a = $("#announce"); a.textContent = ""; setTimeout(() => { a.textContent = text; }, 50); };

// The banner while the matchmaker, or the relay of any open chat, has lost its database: requests
// fail for a moment and nothing is lost, so the desk says so instead of looking frozen.
let matchmakerDegraded = false;
const relayDegraded = new Set();  // session ids whose relay said so
function renderServiceBanner() {
  show($("#service-banner"), matchmakerDegraded || relayDegraded.size
    ? t("listener.degraded")
    : "");
}

function notice(text) { show($("#notice"), text); }
function deskError(text) { show($("#desk-error"), text); }

// ---- signing in ----------------------------------------------------------------------------

function showSignIn(message) {
  $("#desk").hidden = true;
  $("#sign-out").hidden = true;
  $("#signin").hidden = false;
  show($("#signin-error"), message || "");
  $("#token").value = "";
  $("#token").focus();
}

function showDesk() {
  if (!$("#desk").hidden) return;
  $("#signin").hidden = true;
  $("#desk").hidden = false;
  $("#sign-out").hidden = false;
  const title = $("#name-heading");
  title.tabIndex = -1;
  title.focus();
}

async function onSignInSubmit(ev) {
  ev.preventDefault();
  const token = $("#token").value.trim();
  if (!token) { say($("#signin-error"), "listener.signin.empty"); return; }
  if (!supported) {
    say($("#signin-error"), "listener.unsupported");
    return;
  }
  save({ token });
  $("#signin-button").disabled = true;
  try {
    connect();
    await mm.whenReady();
  } catch {
    // onStatus shows why
  } finally {
    $("#signin-button").disabled = false;
  }
}

function signInBody() {
  const body = { token: state.token };
  if (!noOffsetField) body.utcOffsetMin = -new Date().getTimezoneOffset();
  return { listenerSignIn: body };
}

// Signs in on connection `m`; returns the ListenerWelcome.
async function signInOn(m) {
  let reply;
  try {
    reply = await m.request(signInBody(), { alone: true });
  } catch (e) {
    // A matchmaker that does not know utcOffsetMin refuses the whole frame: sign in without it.
    if (e.code !== "MALFORMED_FRAME" || noOffsetField) throw e;
    noOffsetField = true;
    reply = await m.request(signInBody(), { alone: true });
  }
  if (!reply.listenerWelcome) throw new Error("unexpected reply");
  return reply.listenerWelcome;
}

function connect() {
  if (mm) { mm.start(); return; }
  mm = new Matchmaker(cfg.matchmakerUrl, {
    signIn: async (m) => {
      const w = await signInOn(m);
      setTimeout(() => { applyWelcome(w).catch(() => deskError(t("listener.loadFailed"))); }, 0);
    },
    onPush,
    onStatus,
  });
  mm.start();
}

function onStatus(s) {
  if (s.state === "reconnecting") setConn(t("listener.conn.lost"));
  else if (s.state === "ready") {
    // a sign-in needs the matchmaker's database: it has it (again)
    matchmakerDegraded = false;
    renderServiceBanner();
    setConn("");
  }
  else if (s.state === "refused") {
    setConn("");
    mm = null;
    if (s.error && s.error.code === "UNAUTHENTICATED") save({ token: "" });
    if (s.error && (s.error.code === "UNAUTHENTICATED" || s.error.code === "PERMISSION_DENIED")) {
      stopEverything();
      showSignIn(kindError(s.error));
    } else {
      show($("#signin").hidden ? $("#desk-error") : $("#signin-error"), kindError(s.error));
    }
  } else if (s.state === "closed") {
    mm = null;
    if (s.code === 4003) {
      save({ token: "" });
      stopEverything();
      // 4003 "signed out: the token was replaced" (an admin gave a new token) or "account revoked"
      showSignIn(t(/replaced/.test(s.reason || "") ? "common.tokenReplaced" : "listener.revoked"));
    } else {
      setConn(t("error.closed"));
    }
  }
}

async function signOut() {
  const open = [...chats.values()].filter((c) => c.chat && !c.chat.ended).length;
  if (open && !$("#sign-out").dataset.confirm) {
    $("#sign-out").dataset.confirm = "1";
    localize($("#sign-out"), "listener.signOutAnyway");
    deskError(t("listener.stillOpen", { count: open }));
    return;
  }
  if (mm && mm.ready) { try { await mm.call({ setAvailability: { available: false } }, { timeoutMs: 3000 }); } catch { /* leaving anyway */ } }
  if (mm) mm.close();
  mm = null;
  stopEverything();
  for (const id of storedChatIds()) forgetChat(id);
  sessionStorage.removeItem(STORE);
  state = {};
  delete $("#sign-out").dataset.confirm;
  localize($("#sign-out"), "common.signOut");
  showSignIn(t("common.signedOut"));
}

function stopEverything() {
  for (const { chat, view } of chats.values()) { if (chat) chat.stop(); view.destroy(); }
  chats.clear();
  matchmakerDegraded = false;
  relayDegraded.clear();
  renderServiceBanner();
  if (ticketFetch) { ticketFetch.close(); ticketFetch = null; }
  for (const id of [...offers.keys()]) removeOffer(id);
  $("#tablist").replaceChildren();
  $("#panels").replaceChildren();
  selected = "";
  profile = null;
  renderChatsEmpty();
  updateTitle();
}

// ---- profile, availability, break ----------------------------------------------------------

function renderProfile(p) {
  if (!p) return;
  profile = p;
  extraToday = 0;
  $("#name-heading").textContent = p.name || t("listener.name");
  renderAvailability();
  renderToday();
  renderPrefs();
}

// "What I take now" (SetPreferences): checkboxes for the topics and languages the listener is
// trained for and a choice of chats at once up to the admin's cap. Pushed profiles refresh it
// unless the listener is in the middle of changing it.
let prefsDirty = false;
function renderPrefs() {
  if (!profile || prefsDirty) return;
  const checks = (box, all, taken, name) => {
    const on = new Set(taken && taken.length ? taken : all);
    box.replaceChildren(...all.map((id) => {
      const input = h("input", { type: "checkbox", id: `prefs-${box.id}-${id}`, value: id });
      input.checked = on.has(id);
      return h("div", { class: "field checkbox" }, input, h("label", { for: input.id, text: name(cfg, id) }));
    }));
  };
  checks($("#prefs-topics"), profile.trainedTopics || [], profile.topics, topicName);
  checks($("#prefs-languages"), profile.trainedLanguages || [], profile.languages, languageName);
  const cap = Math.max(1, num(profile.maxChatsCap) || 1);
  const select = $("#prefs-max");
  select.replaceChildren(...Array.from({ length: cap }, (_, i) =>
    h("option", { value: String(i + 1), text: String(i + 1) })));
  select.value = String(Math.min(cap, Math.max(1, num(profile.maxChats) || cap)));
  localize($("#prefs-cap"), "listener.prefs.cap", { count: cap });
}

async function savePrefs(ev) {
  ev.preventDefault();
  show($("#prefs-error"), "");
  show($("#prefs-done"), "");
  const picked = (box) => [...box.querySelectorAll("input:checked")].map((i) => i.value);
  const topics = picked($("#prefs-topics"));
  const languages = picked($("#prefs-languages"));
  if (!topics.length || !languages.length) {
    say($("#prefs-error"), "listener.prefs.empty");
    return;
  }
  // everything trained is sent as "everything" (empty), so a topic added to the training later
  // is taken too
  const all = (list, trained) => list.length === (trained || []).length;
  try {
    const reply = await mm.call({ setPreferences: {
      topics: all(topics, profile.trainedTopics) ? [] : topics,
      languages: all(languages, profile.trainedLanguages) ? [] : languages,
      maxChats: Number($("#prefs-max").value),
    } });
    prefsDirty = false;
    if (reply.statusChanged) renderProfile(reply.statusChanged.profile);
    say($("#prefs-done"), "listener.prefs.saved");
  } catch (e) {
    show($("#prefs-error"), kindError(e));
  }
}

function renderToday() {
  localize($("#chats-today"), "listener.today", { count: num(profile && profile.chatsToday) + extraToday });
  renderWellbeing();
}

// The admin's daily cap and breaks: where the listener stands, and a break's countdown.
function renderWellbeing() {
  const text = wellbeingText(profile, Date.now(), extraToday);
  const el = $("#wellbeing");
  if (el.textContent !== text) el.textContent = text;
  el.hidden = !text;
}

function renderAvailability() {
  const available = profile && profile.status === "AVAILABLE";
  $("#available").setAttribute("aria-checked", String(!!available));
  $("#break").setAttribute("aria-checked", String(!!state.breakSince));
  renderBreak();
}

function renderBreak() {
  const since = state.breakSince;
  if (!since) { $("#break-time").textContent = ""; return; }
  const min = Math.floor((Date.now() - since) / 60000);
  if (min < 1) localize($("#break-time"), "listener.break.short");
  else localize($("#break-time"), "listener.break.minutes", { count: min });
}

async function setAvailable(available) {
  deskError("");
  try {
    const reply = await mm.call({ setAvailability: { available } });
    if (reply.statusChanged) renderProfile(reply.statusChanged.profile);
    return true;
  } catch (e) {
    deskError(kindError(e));
    renderAvailability();
    return false;
  }
}

async function toggleAvailable() {
  const on = !(profile && profile.status === "AVAILABLE");
  notice("");
  save({ wantAvailable: on, breakSince: on ? 0 : state.breakSince });
  await setAvailable(on);
}

async function toggleBreak() {
  deskError("");
  if (!state.breakSince) {
    save({ breakSince: Date.now(), wantAvailable: false });
    renderAvailability();
    announce(t("listener.break.start"));
    await setAvailable(false);
  } else {
    const mins = Math.floor((Date.now() - state.breakSince) / 60000);
    save({ breakSince: 0, wantAvailable: true });
    renderAvailability();
    notice(mins >= 1 ? t("listener.break.back", { count: mins }) : t("listener.break.backShort"));
    await setAvailable(true);
  }
}

// ---- welcome, pushes -----------------------------------------------------------------------

async function applyWelcome(w) {
  showDesk();
  renderProfile(w.profile);
  // Replace the whole view: offers and chats as the matchmaker has them now.
  const openOffers = new Set((w.openOffers || []).map((o) => o.offerId));
  for (const id of [...offers.keys()]) if (!openOffers.has(id)) removeOffer(id);
  for (const o of w.openOffers || []) if (!offers.has(o.offerId)) addOffer(o, false);
  const open = new Set((w.openChats || []).map((c) => c.sessionId));
  for (const [id, c] of chats) if (!open.has(id) && c.chat && !c.chat.ended) c.chat.finish(undefined, UNKNOWN_END);
  for (const id of storedChatIds()) if (!open.has(id)) forgetChat(id);
  for (const cs of w.openChats || []) await openChat(cs, false);
  if (w.support) await showSupport(w.support);
  if (state.wantAvailable && !state.breakSince && profile && profile.status !== "AVAILABLE") await setAvailable(true);
}

// ---- "I need support" ----------------------------------------------------------------------

let support = null;  // the SupportChat of the open request, if any

// Shows request `u`; privateKey only on the page that asked (a push may come before the reply).
async function showSupport(u, privateKey = null) {
  if (!u || !u.supportId) return;
  if (!support || support.id !== u.supportId) {
    if (u.state === "SUPPORT_CLOSED" && !support) return;
    support = new SupportChat({ me: "LISTENER", call: (b) => mm.call(b), privateKey, title: "support.titleListener" });
    support.id = u.supportId;
    $("#support").replaceChildren(support.root);
  } else if (privateKey && !support.privateKey) {
    support.privateKey = privateKey;
  }
  await support.update(u);
  $("#ask-support").hidden = !support.closed;
}

async function askSupport() {
  deskError("");
  const button = $("#ask-support");
  button.disabled = true;
  try {
    const key = await supportKey();
    const reply = await mm.call({ askForSupport: { publicKey: key.publicKey } });
    await showSupport(reply.support, key.privateKey);
    announce(t("support.asked"));
  } catch (e) {
    deskError(kindError(e));
  } finally {
    button.disabled = false;
  }
}

function onPush(msg) {
  if (msg.support) {
    showSupport(msg.support);
  } else if (msg.supportLine) {
    if (support && support.id === msg.supportLine.supportId) support.receive(msg.supportLine);
  } else if (msg.offer) {
    addOffer(msg.offer, true);
  } else if (msg.offerClosed) {
    const { offerId, outcome } = msg.offerClosed;
    if (!offers.has(offerId)) return;
    removeOffer(offerId);
    if (outcome === "WITHDRAWN") notice(t("listener.offer.withdrawn"));
    else if (outcome === "TIMED_OUT") notice(t("listener.offer.timedOut"));
  } else if (msg.statusChanged) {
    renderProfile(msg.statusChanged.profile);
    if (msg.statusChanged.reason) {
      notice(fromServer(msg.statusChanged.reason));
      if (msg.statusChanged.profile && msg.statusChanged.profile.status === "AWAY") save({ wantAvailable: false });
    }
  } else if (msg.listenerWelcome) {
    return applyWelcome(msg.listenerWelcome);
  } else if (msg.chatEnded) {
    const e = msg.chatEnded;
    const c = chats.get(e.sessionId);
    const how = { lost: e.lost, requeued: e.requeued === true };
    if (c && c.chat) c.chat.endedElsewhere(e.endedBy, e.reason, how);
    else if (c) c.endedEarly = [e.endedBy, e.reason, how];  // still opening
  } else if (msg.service) {
    matchmakerDegraded = msg.service.degraded === true;
    renderServiceBanner();
  }
}

// ---- offers --------------------------------------------------------------------------------

function addOffer(o, fresh) {
  if (!o || !o.offerId || offers.has(o.offerId)) return;
  const titleId = nextId("offer-title");
  const countdown = h("p", { class: "countdown", role: "timer", "aria-live": "off" });
  const accept = h("button", { type: "button", i18n: "listener.offer.accept" });
  const decline = h("button", { type: "button", class: "secondary", i18n: "listener.offer.decline" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const waited = num(o.waitedS);
  const el = h("section", { class: "offer", role: "region", "aria-labelledby": titleId },
    h("h3", { id: titleId, i18n: "listener.offer.title" }),
    h("p", {}, h("strong", { text: topicName(cfg, o.topic) }), ` · ${languageName(cfg, o.language)}`),
    o.crisis ? h("p", { class: "crisis-flag", i18n: "listener.offer.crisis" }) : null,
    o.preferred ? h("p", { i18n: "listener.offer.preferred" }) : null,
    waited ? h("p", { class: "hint", i18n: waited < 60 ? ["listener.offer.waitedSeconds", { count: waited }]
      : ["listener.offer.waitedMinutes", { count: Math.round(waited / 60) }] }) : null,
    countdown, error,
    h("div", { class: "row" }, accept, decline));
  const entry = { offer: o, el, countdown, accept, decline, error, deadline: num(o.deadlineUnixMs) };
  offers.set(o.offerId, entry);
  accept.addEventListener("click", () => acceptOffer(o.offerId));
  decline.addEventListener("click", () => declineOffer(o.offerId));
  $("#offers").append(el);
  $("#no-offers").hidden = true;
  tickOffer(entry);
  updateTitle();
  if (fresh) {
    chime();
    const left = Math.max(0, Math.round((entry.deadline - Date.now()) / 1000));
    announce(t(o.crisis ? "listener.offer.announceCrisis" : "listener.offer.announce",
      { topic: topicName(cfg, o.topic), language: languageName(cfg, o.language), count: left }));
  }
}

function tickOffer(entry) {
  const left = Math.max(0, Math.ceil((entry.deadline - Date.now()) / 1000));
  entry.countdown.textContent = left > 0 ? t("listener.offer.left", { count: left }) : t("listener.offer.timeUp");
}

function removeOffer(id) {
  const entry = offers.get(id);
  if (!entry) return;
  const hadFocus = entry.el.contains(document.activeElement);
  entry.el.remove();
  offers.delete(id);
  $("#no-offers").hidden = offers.size > 0;
  updateTitle();
  if (hadFocus) {
    const next = [...offers.values()][0];
    if (next) next.accept.focus(); else $("#available").focus();
  }
}

async function acceptOffer(id) {
  const entry = offers.get(id);
  if (!entry) return;
  entry.accept.disabled = entry.decline.disabled = true;
  try {
    const reply = await mm.call({ acceptOffer: { offerId: id } });
    removeOffer(id);
    if (reply.chatStarted) {
      extraToday += 1;
      renderToday();
      await openChat(reply.chatStarted, true);
    }
  } catch (e) {
    if (e.code === "NOT_FOUND" || e.code === "WRONG_STATE") {
      removeOffer(id);
      notice(e.message);
    } else {
      entry.accept.disabled = entry.decline.disabled = false;
      show(entry.error, kindError(e));
    }
  }
}

async function declineOffer(id) {
  const entry = offers.get(id);
  if (!entry) return;
  entry.accept.disabled = entry.decline.disabled = true;
  try {
    await mm.call({ declineOffer: { offerId: id } });
    removeOffer(id);
  } catch (e) {
    if (e.code === "NOT_FOUND") { removeOffer(id); return; }
    entry.accept.disabled = entry.decline.disabled = false;
    show(entry.error, kindError(e));
  }
}

// ---- chats (WAI-ARIA tabs) -----------------------------------------------------------------

function renderChatsEmpty() {
  const any = chats.size > 0;
  $("#no-chats").hidden = any;
  $("#tablist").hidden = !any;
}

async function openChat(cs, focus) {
  if (!cs || !cs.sessionId) return;
  const existing = chats.get(cs.sessionId);
  if (existing) {
    if (!existing.chat) existing.later = cs;  // still opening: use this ticket once it is open
    else if (cs.relayTicket && !existing.chat.ended) existing.chat.setTicket(cs.relayTicket, cs.relayUrl);
    return;
  }
  const tabId = nextId("chat-tab");
  const panelId = nextId("chat-panel");
  const n = ++chatNumber;
  const label = t("listener.chat.label", { n, topic: topicName(cfg, cs.topic) });
  const badge = h("span", { class: "tab-unread" });
  const tab = h("button", { type: "button", role: "tab", id: tabId, "aria-controls": panelId, "aria-selected": "false", tabindex: "-1" },
    h("span", { class: "tab-label", text: label }),
    cs.crisis ? h("span", { class: "tab-crisis", text: t("listener.chat.crisisTab") }) : null,
    badge);
  const entry = { chat: null, view: null, tab, panel: null, badge, unread: 0, label };
  const view = new ChatView({
    them: "person",
    onEnd: () => endChat(cs.sessionId),
    onSeen: () => { entry.unread = 0; renderBadge(entry); },
  });
  const closeButton = h("button", { type: "button", class: "secondary", i18n: "listener.chat.close", hidden: true });
  closeButton.addEventListener("click", () => closeChat(cs.sessionId));
  const report = listenerReport({ sessionId: cs.sessionId, transcript: () => (entry.chat ? entry.chat.transcript : []), call: (b) => mm.call(b) });
  const panel = h("div", { role: "tabpanel", id: panelId, "aria-labelledby": tabId, hidden: true },
    h("p", { class: "hint", text: `${topicName(cfg, cs.topic)} · ${languageName(cfg, cs.language)}` }),
    cs.crisis ? crisisHeader(cs.language) : null,
    view.root, report, closeButton);
  entry.view = view;
  entry.panel = panel;
  entry.closeButton = closeButton;
  chats.set(cs.sessionId, entry);
  let chat;
  try {
    chat = await RelayChat.open({ ...cs, role: "LISTENER" }, (type, detail) => onChatEvent(cs.sessionId, type, detail));
  } catch {
    chats.delete(cs.sessionId);
    view.destroy();
    deskError(t("listener.chat.openFailed"));
    return;
  }
  entry.chat = chat;
  view.attach(chat);
  tab.addEventListener("click", () => selectChat(cs.sessionId, false));
  tab.addEventListener("keydown", onTabKey);
  $("#tablist").append(tab);
  $("#panels").append(panel);
  renderChatsEmpty();
  if (focus || !selected) selectChat(cs.sessionId, focus);
  if (entry.endedEarly) chat.finish(...entry.endedEarly);
  else if (entry.later && entry.later.relayTicket) chat.setTicket(entry.later.relayTicket, entry.later.relayUrl);
  else chat.connect(true);
  if (focus) view.input.focus();
}

// The chat's header when the seeker said "I am in crisis now": plainly, and with the crisis lines
// of the chat's language (from the catalogue) to hand, should the person need them.
function crisisHeader(language) {
  const titleId = nextId("crisis-title");
  const lang = cfg.languages.find((l) => l.tag === language);
  const resources = lang && Array.isArray(lang.crisisResources) ? lang.crisisResources : [];
  return h("section", { class: "crisis chat-crisis", "aria-labelledby": titleId },
    h("h3", { id: titleId, i18n: "listener.chat.crisisTitle" }),
    h("p", { i18n: resources.length ? ["listener.chat.crisisLines", { language: languageName(cfg, language) }]
      : "listener.chat.crisisNoLines" }),
    resources.length ? crisisList(resources) : null);
}

function selectChat(id, focusTab) {
  const target = chats.get(id);
  if (!target) return;
  selected = id;
  for (const [sid, c] of chats) {
    const on = sid === id;
    c.tab.setAttribute("aria-selected", String(on));
    c.tab.tabIndex = on ? 0 : -1;
    c.panel.hidden = !on;
    c.view.setActive(on);
  }
  target.unread = 0;
  renderBadge(target);
  if (focusTab) target.tab.focus();
}

function onTabKey(ev) {
  const ids = [...chats.keys()];
  const at = ids.indexOf(selected);
  let next = -1;
  if (ev.key === "ArrowRight") next = (at + 1) % ids.length;
  else if (ev.key === "ArrowLeft") next = (at - 1 + ids.length) % ids.length;
  else if (ev.key === "Home") next = 0;
  else if (ev.key === "End") next = ids.length - 1;
  if (next < 0) return;
  ev.preventDefault();
  selectChat(ids[next], true);
}

function renderBadge(entry) {
  entry.badge.replaceChildren();
  if (entry.unread > 0) {
    entry.badge.append(h("span", { class: "visually-hidden", text: ", " }), String(entry.unread),
                       h("span", { class: "visually-hidden", text: t("listener.chat.unread") }));
  }
  updateTitle();
}

function updateTitle() {
  let n = offers.size;
  for (const c of chats.values()) n += c.unread;
  document.title = n > 0 ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
}

function onChatEvent(id, type, detail) {
  const entry = chats.get(id);
  if (!entry) return;
  entry.view.handle(type, detail);
  // the other side's messages and Warmline's notes (something could not be delivered) count as unread
  if (type === "message" && detail.entry.from !== "me") {
    if (selected !== id || document.visibilityState !== "visible") {
      entry.unread += 1;
      renderBadge(entry);
    }
  } else if (type === "needticket") {
    freshTickets();
  } else if (type === "ended" || type === "refused" || type === "replaced") {
    // The chat cannot go on in this tab: the view says why; the slot's tab can be closed.
    const what = type === "ended" ? "ended" : "stopped";
    entry.tab.querySelector(".tab-label").textContent = t(`listener.chat.tab.${what}`, { label: entry.label });
    entry.closeButton.hidden = false;
    if (relayDegraded.delete(id)) renderServiceBanner();
    if (selected !== id) announce(t(`listener.chat.announce.${what}`, { label: entry.label }));
    else if (focusWasLost(entry.panel)) entry.closeButton.focus();
  } else if (type === "service") {
    if (detail.degraded) relayDegraded.add(id); else relayDegraded.delete(id);
    renderServiceBanner();
  }
}

// Ending a chat disables its message box and hides its confirmation: focus on either falls to the
// page's start, where a keyboard or screen-reader user would be lost.
function focusWasLost(panel) {
  const a = document.activeElement;
  return !a || a === document.body || (panel.contains(a) && (a.disabled || !!a.closest("[hidden]")));
}

// Relay tickets come only with a sign-in: sign in once more on a second, short-lived connection
// (closing the main one would set this listener away) and take the open chats' fresh tickets.
function freshTickets() {
  if (ticketFetch || !state.token) return;
  const once = new Matchmaker(cfg.matchmakerUrl, {
    signIn: async (m) => {
      const w = await signInOn(m);
      const open = new Map((w.openChats || []).map((c) => [c.sessionId, c]));
      for (const [id, c] of chats) {
        if (!c.chat || c.chat.ended) continue;
        const cs = open.get(id);
        if (cs) c.chat.setTicket(cs.relayTicket, cs.relayUrl);
        else c.chat.finish(undefined, UNKNOWN_END);
      }
    },
    onStatus: (s) => {
      if (s.state === "ready" || s.state === "refused" || s.state === "closed") {
        once.close();
        ticketFetch = null;
      }
    },
  });
  ticketFetch = once;
  once.start();
}

async function endChat(id) {
  const entry = chats.get(id);
  if (!entry || entry.chat.ended) return;
  if (await entry.chat.end()) return;
  try {
    await mm.call({ endChat: { sessionId: id } });
  } catch (e) {
    if (e.code === "NOT_FOUND") { entry.chat.finish(undefined, UNKNOWN_END); return; }
    entry.view.handle("notice", { text: kindError(e) });
  }
}

function closeChat(id) {
  const entry = chats.get(id);
  if (!entry) return;
  const ids = [...chats.keys()];
  const at = ids.indexOf(id);
  entry.chat.stop();
  entry.view.destroy();
  if (relayDegraded.delete(id)) renderServiceBanner();
  entry.tab.remove();
  entry.panel.remove();
  chats.delete(id);
  renderChatsEmpty();
  updateTitle();
  if (selected === id) {
    selected = "";
    const rest = [...chats.keys()];
    if (rest.length) selectChat(rest[Math.min(at, rest.length - 1)], true);
    else $("#chats-title").focus();
  }
}

// ---- start up ------------------------------------------------------------------------------

async function main() {
  startLanguage();
  $(".header-actions").prepend(languagePicker());
  onLanguage(() => { if (profile) { renderPrefs(); renderBreak(); } });
  armSound();
  $("#signin-form").addEventListener("submit", onSignInSubmit);
  $("#sign-out").addEventListener("click", signOut);
  $("#available").addEventListener("click", toggleAvailable);
  $("#prefs-form").addEventListener("submit", savePrefs);
  $("#prefs-form").addEventListener("change", () => { prefsDirty = true; show($("#prefs-done"), ""); });
  $("#break").addEventListener("click", toggleBreak);
  $("#ask-support").addEventListener("click", askSupport);
  $("#chats-title").tabIndex = -1;
  setInterval(() => { for (const e of offers.values()) tickOffer(e); }, 1000);
  setInterval(renderBreak, 15000);
  setInterval(renderWellbeing, 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && selected) {
      const c = chats.get(selected);
      if (c) { c.unread = 0; renderBadge(c); }
    }
  });
  // back online, a relay connection may be dead without knowing it: open new ones at once
  window.addEventListener("online", () => {
    if (mm && !mm.ready && !mm.stopped) mm.reconnectNow();
    for (const { chat } of chats.values()) if (chat && !chat.ended) chat.reconnectNow();
  });
  cfg = await loadConfigOrExplain();
  if (!cfg) return;
  supported = await x25519Supported();
  if (state.token && supported) {
    setConn(t("common.signingIn"));
    connect();
  } else {
    showSignIn(supported ? "" : t("listener.unsupported"));
  }
}

main();

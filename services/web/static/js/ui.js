// Small pieces both the seeker and the listener page use: building elements without innerHTML,
// reading /config.json, kind sentences for errors, and ChatView, the on-screen side of one chat
// (conversation log, typing line, composer, safety code, ending with a confirmation).

import { describeEnd } from "./chat.js";
import { t, localize, unlocalize, language, applyStrings, fromServer } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "hidden") el.hidden = !!v;
    // i18n: a string key, or [key, params]; i18n-<attribute>: the key of that attribute's text
    else if (k === "i18n") localize(el, ...(Array.isArray(v) ? v : [v]));
    else if (k.startsWith("i18n-")) { el.setAttribute(`data-${k}`, v); el.setAttribute(k.slice(5), t(v)); }
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

export async function loadConfig() {
  const r = await fetch("/config.json", { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw new Error("config");
  const cfg = await r.json();
  const cat = cfg.catalogue || {};
  return {
    matchmakerUrl: cfg.matchmakerUrl,
    topics: Array.isArray(cat.topics) ? cat.topics : [],
    languages: Array.isArray(cat.languages) ? cat.languages : [],
  };
}

// /config.json, or null once the page has said it cannot start without it.
export async function loadConfigOrExplain() {
  try {
    return await loadConfig();
  } catch {
    say($("#page-error"), "common.configFailed");
    return null;
  }
}

// A topic's name in the page's language: the catalogue names its topics in English only, so the
// known ones are in the string tables (topic.<id>), and any other falls back to the catalogue.
export function topicName(cfg, id) {
  const known = t(`topic.${id}`);
  if (known !== `topic.${id}`) return known;
  const x = cfg.topics.find((y) => y.id === id);
  return x ? x.name : id;
}

export function languageName(cfg, tag) {
  const l = cfg.languages.find((x) => x.tag === tag);
  return l ? l.name : tag;
}

// The server's messages are written for people; our own failures get our own sentences.
export function kindError(err) {
  if (!err) return t("error.generic");
  const own = {
    DISCONNECTED: "error.disconnected",
    CLOSED: "error.closed",
    TIMEOUT: "error.timeout",
    MALFORMED_FRAME: "error.malformed",
  };
  if (own[err.code]) return t(own[err.code]);
  if (err.code && err.message) return fromServer(err.message);
  return t("error.generic");
}

// A page's own small state in this tab's sessionStorage (never localStorage: it must go with the
// tab). A full storage must not stop the page: the state then lives on in memory.
export function readTabState(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || "{}") || {}; } catch { return {}; }
}

export function writeTabState(key, state) {
  try { sessionStorage.setItem(key, JSON.stringify(state)); } catch { /* kept in memory */ }
}

// Shows `message` as it is (the server's words, or a string already looked up), or hides `el`.
export function show(el, message) {
  unlocalize(el);
  el.textContent = message || "";
  el.hidden = !message;
}

// Shows the string `key` (see i18n.js), said again if the language changes.
export function say(el, key, params) {
  localize(el, key, params);
  el.hidden = false;
}

// The list of crisis resources of one language, as elements.
export function crisisList(resources) {
  const list = h("ul", { class: "resources" });
  for (const r of resources || []) {
    const item = h("li", {}, h("strong", { text: r.name || "" }));
    if (r.phone) {
      item.append(" ", h("a", { href: `tel:${String(r.phone).replace(/[^0-9+]/g, "")}`, text: r.phone }));
    }
    if (r.text) item.append(h("span", { class: "resource-text", text: r.text }));
    if (r.url && /^https?:\/\//.test(r.url)) {
      item.append(h("a", { href: r.url, rel: "noopener noreferrer", target: "_blank", text: r.url.replace(/^https?:\/\//, "") }));
    }
    list.append(item);
  }
  return list;
}

const timeFmt = () => new Intl.DateTimeFormat(language(), { hour: "2-digit", minute: "2-digit" });

// One chat on screen. The owner forwards the RelayChat's events to handle(); `them` is who the
// other person is ("listener" for a seeker, "person" for a listener: chat.<them>.* strings). The status line says, in this order of
// weight: how the chat ended or why it stopped here, that this page is reconnecting, that the other
// side's connection dropped (the message box stays usable: what is written then is stored by the
// relay and delivered when they are back), or that they have not joined yet.
export class ChatView {
  constructor({ them, onEnd, onSeen }) {
    this.them = them;
    this.onEnd = onEnd;
    this.onSeen = onSeen || (() => {});
    this.chat = null;
    this.items = new Map();
    this.typingTimer = null;
    this.myTypingUntil = 0;
    this.myTypingStop = null;
    this.active = false;
    const msgId = nextId("message");
    const codeId = nextId("safety");
    this.status = h("p", { class: "chat-status", role: "status" });
    // The live region wraps the list: role=log on the <ol> itself would take away its list
    // semantics, so a screen reader could no longer say "list, 5 items".
    this.list = h("ol", { class: "log-messages" });
    this.log = h("div", { class: "log", role: "log", "i18n-aria-label": "chat.conversation", "aria-live": "polite", tabindex: "0" }, this.list);
    this.typing = h("p", { class: "typing", role: "status", "aria-live": "polite" });
    this.notice = h("p", { class: "notice", role: "alert", hidden: true });
    this.codeButton = h("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": codeId, i18n: "chat.code.show" });
    this.codeValue = h("code", { "data-testid": "safety-code", class: "safety-code" });
    this.codeBox = h("div", { id: codeId, class: "safety-box", hidden: true },
      h("p", {}, h("span", { i18n: "chat.code.yours" }), " ", this.codeValue),
      h("p", { class: "hint", i18n: "chat.code.hint" }));
    this.input = h("textarea", { id: msgId, rows: "2", autocomplete: "off", maxlength: "4000" });
    this.sendButton = h("button", { type: "submit", i18n: "chat.send" });
    this.composer = h("form", { class: "composer" },
      h("label", { for: msgId, i18n: "chat.message" }),
      h("div", { class: "composer-row" }, this.input, this.sendButton),
      h("p", { class: "hint", i18n: "chat.enterHint" }));
    this.endButton = h("button", { type: "button", class: "danger", i18n: "chat.end" });
    this.confirmYes = h("button", { type: "button", class: "danger", i18n: "chat.end.yes" });
    this.confirmNo = h("button", { type: "button", class: "secondary", i18n: "chat.end.no" });
    this.confirm = h("div", { class: "confirm", role: "group", "i18n-aria-label": "chat.end.confirm", hidden: true },
      h("p", { i18n: "chat.end.question" }),
      h("div", { class: "row" }, this.confirmYes, this.confirmNo));
    this.tools = h("div", { class: "chat-tools row" }, this.codeButton, this.endButton);
    this.root = h("div", { class: "chat" }, this.status, this.log, this.typing, this.notice, this.composer,
      this.tools, this.codeBox, this.confirm);

    this.composer.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); this.submit(); }
    });
    this.input.addEventListener("input", () => this.typed());
    this.codeButton.addEventListener("click", () => {
      const open = this.codeBox.hidden;
      this.codeBox.hidden = !open;
      this.codeButton.setAttribute("aria-expanded", String(open));
      localize(this.codeButton, open ? "chat.code.hide" : "chat.code.show");
      this.renderCode();
    });
    this.endButton.addEventListener("click", () => {
      this.confirm.hidden = false;
      this.confirmYes.focus();
    });
    this.confirmNo.addEventListener("click", () => { this.confirm.hidden = true; this.endButton.focus(); });
    this.confirmYes.addEventListener("click", async () => {
      this.confirmYes.disabled = true;
      try { await this.onEnd(); } finally { this.confirmYes.disabled = false; }
    });
    this.onVisible = () => this.seen();
    document.addEventListener("visibilitychange", this.onVisible);
  }

  // The view is going away for good (its tab closed, signing out): let go of the page-wide
  // listener and the timers, and of the messages on screen.
  destroy() {
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.typingTimer);
    clearTimeout(this.myTypingStop);
    this.clearMessages();
    this.codeValue.textContent = "";
    this.chat = null;
  }

  attach(chat) {
    this.chat = chat;
    applyStrings(this.root);  // the language may have changed since the view was made
    this.clearMessages();
    for (const entry of chat.transcript) this.addEntry(entry);
    this.renderCode();
    // the view may have shown an earlier chat that ended (a seeker's next chat, or the one after
    // a lost listener): this one starts usable
    show(this.notice, "");
    this.showTyping(false);
    this.input.disabled = this.sendButton.disabled = false;
    this.endButton.hidden = false;
    this.setStatus(chat.keys ? "" : this.say("waitingJoin"));
  }

  // The sentence `what` about the other person (chat.listener.<what> or chat.person.<what>).
  say(what) { return t(`chat.${this.them}.${what}`); }

  // What the status line says while this page is connected: whether the other side is away.
  connectedStatus() {
    if (!this.chat || !this.chat.keys) return this.say("waitingJoin");
    if (this.chat.peerAway) return this.say("away");
    return "";
  }

  // Takes the messages off the screen (the chat's transcript is the owner's to keep or wipe).
  clearMessages() {
    this.list.replaceChildren();
    this.items.clear();
  }

  setActive(active) {
    this.active = active;
    if (active) this.seen();
  }

  seen() {
    if (this.active && document.visibilityState === "visible" && this.chat && !this.chat.ended) {
      this.chat.markRead();
      this.onSeen();
    }
  }

  setStatus(text) { this.status.textContent = text || ""; }

  renderCode() {
    const code = this.chat && this.chat.safety;
    this.codeValue.textContent = code || "";
    const hint = this.codeBox.querySelector(".hint");
    if (!code && hint) localize(hint, `chat.${this.them}.codeLater`);
    else if (hint) localize(hint, "chat.code.hint");
  }

  addEntry(entry) {
    if (entry.from === "note") {
      // Warmline's own word in the conversation (a message that could not be delivered): an item of
      // the log like the messages, so a screen reader hears it in its place and in the live region.
      const li = h("li", { class: "log-note", dataset: { kind: "note" } }, h("p", { text: entry.text }));
      this.items.set(entry.id, { li, meta: null, entry });
      this.list.append(li);
      this.log.scrollTop = this.log.scrollHeight;
      return;
    }
    const mine = entry.from === "me";
    const meta = h("span", { class: "msg-meta" });
    const li = h("li", { class: "msg", dataset: { from: mine ? "me" : "them" } },
      h("span", { class: "visually-hidden", text: mine ? t("chat.you") : this.say("says") }),
      h("p", { class: "msg-text", text: entry.text }),
      meta);
    this.items.set(entry.id, { li, meta, entry });
    this.renderMeta(entry);
    const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
    this.list.append(li);
    if (nearBottom || mine) this.log.scrollTop = this.log.scrollHeight;
  }

  renderMeta(entry) {
    const item = this.items.get(entry.id);
    if (!item || !item.meta) return;
    // Sent: Warmline has stored it; Delivered: it is on the other person's device; Read: they had
    // the chat in view.
    let state = "";
    if (entry.from === "me") {
      if (entry.state === "lost") state = t("chat.state.lost");
      else if (entry.seq && this.chat && entry.seq <= this.chat.peerRead) state = t("chat.state.read");
      else if (entry.state === "delivered") state = t("chat.state.delivered");
      else if (entry.state === "sent") state = t("chat.state.sent");
      else state = t("chat.state.sending");
    }
    const when = entry.at ? timeFmt().format(new Date(entry.at)) : "";
    item.meta.textContent = [when, state].filter(Boolean).join(" · ");
  }

  handle(type, detail) {
    switch (type) {
      case "message":
        this.addEntry(detail.entry);
        if (detail.entry.from === "them") { this.showTyping(false); this.seen(); }
        break;
      case "update": this.renderMeta(detail.entry); break;
      case "read":
        for (const { entry } of this.items.values()) if (entry.from === "me") this.renderMeta(entry);
        break;
      case "peer":
        this.renderCode();
        this.setStatus(this.connectedStatus());
        break;
      case "typing": this.showTyping(detail.typing); break;
      case "status":
        if (detail.state === "reconnecting") this.setStatus(t("chat.reconnecting"));
        else if (detail.state === "waiting-peer") this.setStatus(this.say("waitingJoin"));
        else if (detail.state === "connected") { this.setStatus(this.connectedStatus()); this.seen(); }
        break;
      case "presence":
        if (!this.chat || this.chat.ended || this.chat.stopped) break;
        if (!detail.present) { this.showTyping(false); this.setStatus(this.connectedStatus()); }
        else this.setStatus(t("chat.back"));
        break;
      case "notice": show(this.notice, detail.text); break;
      case "replaced":
        this.stopped(t("chat.replaced"));
        break;
      case "refused":
        this.stopped(detail.text);
        break;
      case "ended":
        this.stopped(detail.text || describeEnd(this.chat.role, detail.endedBy, detail.reason, detail));
        break;
      default: break;
    }
  }

  // The chat cannot go on here (it ended, or another tab or device holds it): say why, and let
  // nothing look as if it could still send.
  stopped(text) {
    this.showTyping(false);
    clearTimeout(this.myTypingStop);
    this.setStatus(text);
    this.disable();
  }

  disable() {
    this.input.disabled = true;
    this.sendButton.disabled = true;
    this.endButton.hidden = true;
    this.confirm.hidden = true;
  }

  showTyping(on) {
    clearTimeout(this.typingTimer);
    this.typing.textContent = on ? this.say("typing") : "";
    if (on) this.typingTimer = setTimeout(() => { this.typing.textContent = ""; }, 8000);
  }

  typed() {
    if (!this.chat || this.chat.ended) return;
    const now = Date.now();
    if (now > this.myTypingUntil) { this.chat.setTyping(true); this.myTypingUntil = now + 3000; }
    clearTimeout(this.myTypingStop);
    this.myTypingStop = setTimeout(() => { if (this.chat) this.chat.setTyping(false); this.myTypingUntil = 0; }, 4000);
  }

  submit() {
    const text = this.input.value;
    if (!this.chat || this.chat.ended || !text.trim()) return;
    try {
      this.chat.send(text.replace(/\s+$/, ""));
    } catch (err) {
      say(this.notice, err instanceof RangeError ? "chat.sendTooLong" : "chat.sendEnded");
      return;
    }
    show(this.notice, "");
    this.input.value = "";
    clearTimeout(this.myTypingStop);
    if (this.myTypingUntil) { this.chat.setTyping(false); this.myTypingUntil = 0; }
    this.input.focus();
  }
}

// A short, soft two-note chime made with an oscillator (no audio file). Browsers allow sound only
// after the person has interacted with the page, so call armSound() early.
let audioCtx = null;
let interacted = false;
export function armSound() {
  const mark = () => { interacted = true; };
  window.addEventListener("pointerdown", mark, { once: true, capture: true });
  window.addEventListener("keydown", mark, { once: true, capture: true });
}

export function chime() {
  if (!interacted) return;
  try {
    audioCtx = audioCtx || new AudioContext();
    const t = audioCtx.currentTime;
    for (const [i, freq] of [[0, 660], [1, 880]]) {
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.15, t + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.18 + 0.25);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(t + i * 0.18);
      osc.stop(t + i * 0.18 + 0.3);
    }
  } catch {
    // no sound is fine
  }
}

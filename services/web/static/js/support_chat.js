// "I need support": the private side chat between a listener and the supervisor who answered
// them (docs/protocol.md 4.22), for both pages. It is end-to-end encrypted with the chat suite
// (js/e2e.js): the supervisor takes the seeker's side, the support id is the session id, and the
// matchmaker only passes sealed lines on. The key pair lives in this page's memory only: a
// reloaded page cannot read an open side chat, and says so.

import { generateKeyPair, chatKeys, seal, open, toBase64, fromBase64 } from "./e2e.js";
import { h, show, nextId, kindError } from "./ui.js";
import { t, localize } from "./i18n.js";

const MAX_TEXT = 2000;

// A fresh key pair for one request; the public half goes in AskForSupport/AnswerSupport.
export async function supportKey() {
  const pair = await generateKeyPair();
  return { privateKey: pair.privateKey, publicKey: toBase64(pair.publicRaw) };
}

export class SupportChat {
  // me: "LISTENER" or "SUPERVISOR"; call: the matchmaker's request; privateKey: from supportKey,
  // or null on a page that did not make this request (then it can only end it); title: a string
  // key, or [key, params].
  constructor({ me, call, privateKey, title }) {
    this.me = me;
    this.call = call;
    this.privateKey = privateKey;
    this.id = "";
    this.keys = null;
    this.sent = 0;
    this.closed = false;
    const titleId = nextId("support-title");
    this.status = h("p", { class: "hint", role: "status" });
    this.log = h("div", { class: "support-log", role: "log", "aria-labelledby": titleId });
    const inputId = nextId("support-input");
    this.input = h("textarea", { id: inputId, rows: "2", maxlength: String(MAX_TEXT), disabled: true });
    this.sendButton = h("button", { type: "submit", i18n: "support.send", disabled: true });
    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.endButton = h("button", { type: "button", class: "secondary", i18n: "support.end" });
    this.form = h("form", { class: "support-form" },
      h("label", { for: inputId, i18n: "support.message" }), this.input, this.sendButton);
    this.root = h("section", { class: "card support-chat", "aria-labelledby": titleId },
      h("h2", { id: titleId, i18n: title }), this.status, this.log, this.form, this.error, this.endButton);
    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.send(); });
    this.endButton.addEventListener("click", () => this.end());
  }

  // A SupportUpdate for this request: connects the keys once a supervisor has answered.
  async update(u) {
    this.id = u.supportId;
    if (u.state === "SUPPORT_CLOSED") { this.finish(u); return; }
    if (u.state !== "SUPPORT_ANSWERED") {
      localize(this.status, "support.waiting");
      return;
    }
    const peerKey = this.me === "SUPERVISOR" ? u.listenerKey : u.supervisorKey;
    if (!this.keys && this.privateKey && peerKey) {
      this.keys = await chatKeys(this.privateKey, fromBase64(peerKey), u.supportId, this.me === "SUPERVISOR" ? "SEEKER" : "LISTENER");
    }
    if (!this.keys) {
      localize(this.status, "support.noKey");
      return;
    }
    if (this.me === "SUPERVISOR") localize(this.status, "support.withListener", { name: u.listenerName || t("support.theListener") });
    else localize(this.status, "support.supervisorHere", { name: u.supervisorName || t("support.aSupervisor") });
    this.input.disabled = false;
    this.sendButton.disabled = false;
  }

  async receive(line) {
    if (!this.keys || this.closed) return;
    const text = await open(this.keys.receiveKey, this.id, this.keys.receiveDir, Number(line.seq), fromBase64(line.ciphertext || ""));
    this.addLine(text === null ? t("support.unreadable") : text, "them");
  }

  addLine(text, from) {
    const who = from === "me" ? "support.you" : this.me === "SUPERVISOR" ? "support.listener" : "support.supervisor";
    this.log.append(h("p", { dataset: { from } }, h("span", { class: "who", i18n: who }), " ", text));
  }

  async send() {
    const text = this.input.value.trim();
    if (!text || !this.keys || this.closed) return;
    show(this.error, "");
    const seq = this.sent + 1;
    const ciphertext = await seal(this.keys.sendKey, this.id, this.keys.sendDir, seq, text);
    try {
      await this.call({ supportSay: { supportId: this.id, seq: String(seq), ciphertext: toBase64(ciphertext) } });
      this.sent = seq;
      this.input.value = "";
      this.addLine(text, "me");
    } catch (e) {
      show(this.error, kindError(e));
    }
  }

  async end() {
    if (this.closed || !this.id) return;
    try {
      const reply = await this.call({ endSupport: { supportId: this.id } });
      if (reply.support) this.finish(reply.support);
    } catch (e) {
      show(this.error, kindError(e));
    }
  }

  finish(u) {
    this.closed = true;
    this.keys = null;
    this.input.disabled = true;
    this.sendButton.disabled = true;
    this.endButton.hidden = true;
    const by = u && u.closedBy;
    localize(this.status, by === (this.me === "SUPERVISOR" ? "LISTENER" : "SUPERVISOR") ? "support.endedByOther" : "support.ended");
  }
}

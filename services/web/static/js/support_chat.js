// "I need support": the private side chat between a listener and the supervisor who answered
// them (docs/protocol.md 4.22), for both pages. It is end-to-end encrypted with the chat suite
// (js/e2e.js): the supervisor takes the seeker's side, the support id is the session id, and the
// matchmaker only passes sealed lines on. The key pair lives in this page's memory only: a
// reloaded page cannot read an open side chat, and says so.

import { generateKeyPair, chatKeys, seal, open, toBase64, fromBase64 } from "./e2e.js";
import { h, show, nextId, kindError } from "./ui.js";

const MAX_TEXT = 2000;

// A fresh key pair for one request; the public half goes in AskForSupport/AnswerSupport.
export async function supportKey() {
  const pair = await generateKeyPair();
  return { privateKey: pair.privateKey, publicKey: toBase64(pair.publicRaw) };
}

export class SupportChat {
  // me: "LISTENER" or "SUPERVISOR"; call: the matchmaker's request; privateKey: from supportKey,
  // or null on a page that did not make this request (then it can only end it).
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
    this.sendButton = h("button", { type: "submit", text: "Send", disabled: true });
    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.endButton = h("button", { type: "button", class: "secondary", text: "End support chat" });
    this.form = h("form", { class: "support-form" },
      h("label", { for: inputId, text: "Message" }), this.input, this.sendButton);
    this.root = h("section", { class: "card support-chat", "aria-labelledby": titleId },
      h("h2", { id: titleId, text: title }), this.status, this.log, this.form, this.error, this.endButton);
    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.send(); });
    this.endButton.addEventListener("click", () => this.end());
  }

  // A SupportUpdate for this request: connects the keys once a supervisor has answered.
  async update(u) {
    this.id = u.supportId;
    if (u.state === "SUPPORT_CLOSED") { this.finish(u); return; }
    if (u.state !== "SUPPORT_ANSWERED") {
      this.status.textContent = "A supervisor has been asked to join you. You can keep chatting meanwhile.";
      return;
    }
    const peerKey = this.me === "SUPERVISOR" ? u.listenerKey : u.supervisorKey;
    if (!this.keys && this.privateKey && peerKey) {
      this.keys = await chatKeys(this.privateKey, fromBase64(peerKey), u.supportId, this.me === "SUPERVISOR" ? "SEEKER" : "LISTENER");
    }
    if (!this.keys) {
      this.status.textContent = "This support chat was opened on another page load, so this page can't read it. End it and ask again if you need to.";
      return;
    }
    this.status.textContent = this.me === "SUPERVISOR"
      ? `You're talking with ${u.listenerName || "the listener"}. Only the two of you can read this.`
      : `${u.supervisorName || "A supervisor"} is here. Only the two of you can read this.`;
    this.input.disabled = false;
    this.sendButton.disabled = false;
  }

  async receive(line) {
    if (!this.keys || this.closed) return;
    const text = await open(this.keys.receiveKey, this.id, this.keys.receiveDir, Number(line.seq), fromBase64(line.ciphertext || ""));
    this.addLine(text === null ? "(A message could not be read.)" : text, "them");
  }

  addLine(text, from) {
    const who = from === "me" ? "You" : this.me === "SUPERVISOR" ? "Listener" : "Supervisor";
    this.log.append(h("p", { dataset: { from } }, h("span", { class: "who", text: `${who}: ` }), text));
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
    this.status.textContent = by === (this.me === "SUPERVISOR" ? "LISTENER" : "SUPERVISOR")
      ? "The other side ended this support chat." : "This support chat has ended.";
  }
}

// Reporting a chat to Warmline's safety team: the limits the matchmaker checks (docs/protocol.md,
// ReportChat), the checklist of messages a report may quote (the two people's words, never
// Warmline's notes), the reportChat body, and the listener's report form, which can also end
// the chat and block the person. Message text leaves the browser only here, only the ticked lines.

import { h, kindError, show, say, nextId } from "./ui.js";

export const REPORT_LIMITS = { messages: 50, text: 2000, reason: 500, frame: 65536 };

// What is wrong with a report before it is sent, as [string key, params] for say()/localize();
// null when nothing is.
export function reportProblem(reason, picked) {
  const L = REPORT_LIMITS;
  if (!picked.length && !reason) return ["seeker.report.nothing"];
  if ([...reason].length > L.reason) return ["seeker.report.reasonLong", { max: L.reason }];
  if (picked.length > L.messages) return ["seeker.report.tooMany", { max: L.messages }];
  if (picked.some((m) => [...m.text].length > L.text)) return ["seeker.report.messageLong", { max: L.text }];
  return null;
}

// The reportChat body; `mine` is the sender's role ("SEEKER" or "LISTENER").
export function reportBody(sessionId, reason, picked, mine, extra = {}) {
  const theirs = mine === "SEEKER" ? "LISTENER" : "SEEKER";
  return {
    sessionId,
    reason,
    messages: picked.map((m) => ({ from: m.from === "me" ? mine : theirs, seq: String(m.seq || 0), text: m.text, sentUnixMs: String(m.at || 0) })),
    ...extra,
  };
}

// Whether the body would not fit in one frame (64 KiB; 50 long messages can exceed it).
export function tooLong(body) {
  return new TextEncoder().encode(JSON.stringify({ requestId: "x".repeat(64), reportChat: body })).length >= REPORT_LIMITS.frame;
}

// The two people's messages of a transcript, which a report may quote.
export function quotable(transcript) {
  return (transcript || []).filter((e) => e.from === "me" || e.from === "them");
}

// Fills `list` (a <ul>) with a checkbox per message; `them`: the string key naming the other person.
export function fillChecklist(list, messages, them) {
  list.replaceChildren();
  messages.forEach((m, i) => {
    const id = nextId("report-msg");
    const who = h("span", { class: "who", id: `${id}-who`, i18n: m.from === "me" ? "seeker.report.you" : them });
    list.append(h("li", { dataset: { from: m.from === "me" ? "me" : "them" } },
      h("input", { type: "checkbox", id, value: String(i), "aria-describedby": `${id}-who` }),
      h("label", { for: id, text: m.text }), who));
  });
}

// The ticked messages of a checklist filled from `messages`.
export function ticked(list, messages) {
  return [...list.querySelectorAll("input:checked")].map((i) => messages[Number(i.value)]).filter(Boolean);
}

// A listener's "Report or block this person" for one chat: a button that opens a form (messages
// to include, what happened, "Block them"), sent as reportChat with `block`. Works during the
// chat and after it ended, once (blocking an ended chat's person only blocks). transcript(): the
// chat's lines now; call(body): the matchmaker's request. A report that only blocks may be empty.
export function listenerReport({ sessionId, transcript, call }) {
  const formId = nextId("listener-report");
  const titleId = nextId("listener-report-title");
  const open = h("button", { type: "button", class: "secondary report-open", "aria-expanded": "false", "aria-controls": formId, i18n: "listener.report.open" });
  const list = h("ul", { class: "report-messages" });
  const empty = h("p", { class: "hint", hidden: true, i18n: "listener.report.empty" });
  const reasonId = nextId("listener-report-reason");
  const reason = h("textarea", { id: reasonId, rows: "3", maxlength: String(REPORT_LIMITS.reason) });
  const blockId = nextId("listener-report-block");
  const block = h("input", { type: "checkbox", id: blockId });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const send = h("button", { type: "submit", i18n: "seeker.report.send" });
  const cancel = h("button", { type: "button", class: "secondary", i18n: "listener.report.cancel" });
  const done = h("p", { class: "success", role: "status", tabindex: "-1", hidden: true });
  const title = h("h3", { id: titleId, tabindex: "-1", i18n: "listener.report.title" });
  const form = h("form", { id: formId, class: "listener-report", "aria-labelledby": titleId, novalidate: true, hidden: true },
    title,
    h("p", { i18n: "listener.report.body" }),
    h("fieldset", {}, h("legend", { i18n: "seeker.report.messages" }), list, empty),
    h("div", { class: "field" }, h("label", { for: reasonId, i18n: "seeker.report.reason" }), reason),
    h("div", { class: "field checkbox" }, block, h("label", { for: blockId, i18n: "listener.report.block" })),
    error, h("div", { class: "actions" }, send, cancel));
  let messages = [];

  const close = () => {
    form.hidden = true;
    open.setAttribute("aria-expanded", "false");
    open.hidden = false;
    open.focus();
  };
  open.addEventListener("click", () => {
    messages = quotable(transcript());
    fillChecklist(list, messages, "listener.report.them");
    empty.hidden = messages.length > 0;
    show(error, "");
    form.hidden = false;
    open.hidden = true;
    open.setAttribute("aria-expanded", "true");
    title.focus();
  });
  cancel.addEventListener("click", close);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show(error, "");
    const why = reason.value.trim();
    const picked = ticked(list, messages);
    const problem = reportProblem(why, picked);
    // a block alone needs no words
    if (problem && !(block.checked && !picked.length && !why)) { say(error, ...problem); return; }
    const body = reportBody(sessionId, why, picked, "LISTENER", block.checked ? { block: true } : {});
    if (tooLong(body)) { say(error, "seeker.report.tooLong"); return; }
    send.disabled = true;
    try {
      await call({ reportChat: body });
      form.hidden = true;
      say(done, body.block ? "listener.report.doneBlocked" : "listener.report.done");
      done.focus();
    } catch (e) {
      send.disabled = false;
      show(error, e.code === "WRONG_STATE" ? e.message : kindError(e));
    }
  });
  return h("div", { class: "listener-report-box" }, open, form, done);
}

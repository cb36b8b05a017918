// The safety team's review queue on the supervisor's dashboard (docs/protocol.md 4.23): how many
// reports wait, and on demand the reports themselves (ListReports), each with its status, a note
// and what may be done about its listener (ReviewReport: suspend pending review, lift it,
// revoke). A report's messages are the reporter's own copy and are shown as unverified; nothing
// here names a seeker. Reading the queue is audited by the matchmaker.

import { h, nextId } from "./ui.js";
import { t, localize, language, applyStrings } from "./i18n.js";

const STATUSES = ["REPORT_OPEN", "REPORT_REVIEWED", "REPORT_ACTIONED", "REPORT_DISMISSED"];
const STATUS_KEY = { REPORT_OPEN: "dash.reviews.status.open", REPORT_REVIEWED: "dash.reviews.status.reviewed",
                     REPORT_ACTIONED: "dash.reviews.status.actioned", REPORT_DISMISSED: "dash.reviews.status.dismissed" };

const when = (ms) => (Number(ms) ? new Date(Number(ms)).toLocaleString(language(), { dateStyle: "short", timeStyle: "short" }) : "");

export class ReviewQueue {
  // call: the matchmaker's request; topicName(id), languageName(tag): the catalogue's names.
  constructor({ call, topicName, languageName }) {
    this.call = call;
    this.topicName = topicName;
    this.languageName = languageName;
    this.count = h("p", { role: "status" });
    this.toggle = h("button", { type: "button", class: "secondary", "aria-expanded": "false", i18n: "dash.reviews.show" });
    const allId = nextId("reviews-all");
    this.all = h("input", { type: "checkbox", id: allId });
    this.allField = h("div", { class: "field checkbox", hidden: true }, this.all, h("label", { for: allId, i18n: "dash.reviews.includeClosed" }));
    this.error = h("p", { class: "dash-error", role: "alert" });
    this.list = h("div", { class: "review-list", hidden: true });
    this.toggle.addEventListener("click", () => (this.list.hidden ? this.open() : this.close()));
    this.all.addEventListener("change", () => this.refresh());
  }

  mount(root) {
    root.replaceChildren(h("h2", { id: "reviews-title", i18n: "dash.reviews.title" }), this.count, this.toggle,
                         this.allField, this.error, this.list);
    applyStrings(root);  // built before the page chose its language
  }

  setOpenCount(n) {
    localize(this.count, n ? "dash.reviews.waiting" : "dash.reviews.none", { count: n });
  }

  async open() {
    this.list.hidden = false;
    this.allField.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
    localize(this.toggle, "dash.reviews.hide");
    await this.refresh();
  }

  close() {
    this.list.hidden = true;
    this.allField.hidden = true;
    this.list.replaceChildren();
    this.toggle.setAttribute("aria-expanded", "false");
    localize(this.toggle, "dash.reviews.show");
  }

  async refresh() {
    this.error.textContent = "";
    try {
      const reply = await this.call({ listReports: { includeClosed: this.all.checked } });
      const reports = (reply.reports && reply.reports.reports) || [];
      this.list.replaceChildren(...(reports.length ? reports.map((r) => this.card(r)) : [h("p", { i18n: "dash.reviews.empty" })]));
    } catch (e) {
      this.error.textContent = e.message || t("dash.reviews.failed");
    }
  }

  card(r) {
    const titleId = nextId("review-title");
    const article = h("article", { class: "review card", "aria-labelledby": titleId });
    const fill = (rep) => article.replaceChildren(...this.body(rep, titleId, (next) => fill(next)));
    fill(r);
    return article;
  }

  body(r, titleId, replace) {
    const by = r.by === "LISTENER" ? "dash.reviews.byListener" : "dash.reviews.bySeeker";
    const facts = h("dl", { class: "review-facts" },
      h("dt", { i18n: "dash.reviews.listener" }), h("dd", { text: `${r.listenerName || r.listenerId}${r.listenerRevoked ? ` (${t("dash.reviews.revoked")})` : r.listenerSuspended ? ` (${t("dash.reviews.suspended")})` : ""}` }),
      h("dt", { i18n: "dash.reviews.chat" }), h("dd", { text: `${this.topicName(r.topic)} · ${this.languageName(r.language)} · ${when(r.startedUnixMs)}` }),
      h("dt", { i18n: "dash.reviews.reportedAt" }), h("dd", { text: when(r.atUnixMs) }),
      h("dt", { i18n: "dash.reviews.reason" }), h("dd", { text: r.reason || "—" }),
      h("dt", { i18n: "dash.reviews.statusLabel" }), h("dd", { i18n: STATUS_KEY[r.status] || STATUS_KEY.REPORT_OPEN }));
    const messages = (r.messages || []).length
      ? [h("p", { class: "hint", i18n: "dash.reviews.unverified" }),
         h("ul", { class: "report-messages" }, ...(r.messages || []).map((m) =>
           h("li", {}, h("span", { class: "who", i18n: m.from === "LISTENER" ? "dash.reviews.fromListener" : "dash.reviews.fromSeeker" }), " ", m.text)))]
      : [];
    const statusId = nextId("review-status");
    const status = h("select", { id: statusId }, ...STATUSES.map((s) => h("option", { value: s, i18n: STATUS_KEY[s] })));
    status.value = r.status || "REPORT_OPEN";
    const noteId = nextId("review-note");
    const note = h("textarea", { id: noteId, rows: "2", maxlength: "500" });
    note.value = r.note || "";
    const error = h("p", { class: "dash-error", role: "alert" });
    const send = async (action) => {
      error.textContent = "";
      try {
        const body = { reportId: r.reportId, status: status.value, note: note.value.trim() };
        if (action) { body.action = action; delete body.status; }
        const reply = await this.call({ reviewReport: body });
        if (reply.report) replace(reply.report);
      } catch (e) {
        error.textContent = e.message || t("dash.reviews.failed");
      }
    };
    const button = (key, action, cls = "secondary") => {
      const b = h("button", { type: "button", class: cls, i18n: key });
      b.addEventListener("click", () => send(action));
      return b;
    };
    const actions = [button("dash.reviews.save", "", "")];
    if (!r.listenerRevoked) {
      actions.push(r.listenerSuspended ? button("dash.reviews.reinstate", "REINSTATE_LISTENER")
                                       : button("dash.reviews.suspend", "SUSPEND_LISTENER"));
      actions.push(button("dash.reviews.revoke", "REVOKE_LISTENER"));
    }
    return [h("h3", { id: titleId, i18n: by }), facts, ...messages,
            h("div", { class: "field" }, h("label", { for: statusId, i18n: "dash.reviews.statusLabel" }), status),
            h("div", { class: "field" }, h("label", { for: noteId, i18n: "dash.reviews.note" }), note),
            h("div", { class: "review-actions" }, ...actions), error];
  }
}

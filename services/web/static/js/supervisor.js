// The supervisor dashboard: signs in to the matchmaker with a supervisor token (through
// matchmaker.js, on every connection), keeps the last hour of StatsSnapshots (seeded from the
// sign-in reply's history, then one push a second) and draws the shortage call-out, the "Queues
// right now" table and the charts. It only ever sees counts and durations per topic × language;
// it never logs, prints or shows a token. Two call-outs say what needs a person now: crisis requests
// nobody took in time (the more urgent), and seekers no available listener may take.

import { LineChart, swatch, count_step, duration_step } from "./chart.js";
import { Matchmaker, ServiceError, num } from "./matchmaker.js";
import { h } from "./ui.js";
import { SupportChat, supportKey } from "./support_chat.js";
import { ReviewQueue } from "./review_queue.js";
import * as i18n from "./i18n.js";

const TOKEN_KEY = "warmline.supervisor.token";
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const KEEP_MS = HOUR_MS + 2 * MINUTE_MS; // one spare minute as the baseline of the first per-minute step
const BUCKET_MS = 10_000;                // gauges are drawn as the maximum of each 10 s
const STALE_MS = 10_000;                 // no snapshot for this long on an open socket: reconnect
const BACKOFF = { firstMs: 1_000, maxMs: 30_000 };  // reconnect delays (reconnect.js)
const WAIT_WINDOW_MS = 15 * MINUTE_MS;   // what wait_p50_s and wait_p90_s cover (docs/protocol.md)

// Fields of a QueueStats, in the order we keep them in a sample.
const FIELDS = {
  waiting: "seekersWaiting", longest: "longestWaitS", p50: "waitP50S", p90: "waitP90S",
  available: "listenersAvailable", busy: "listenersBusy", away: "listenersAway", chats: "chatsActive",
  accepted: "offersAccepted", declined: "offersDeclined", timed_out: "offersTimedOut",
  abandoned: "requestsAbandoned",
  unservable: "seekersUnservable", crisis_waiting: "crisisWaiting", crisis_overdue: "crisisOverdue",
  crisis_chats: "crisisChatsActive", crisis_p50: "crisisWaitP50S", crisis_p90: "crisisWaitP90S",
};
const SHOWN = ["waiting", "unservable", "longest", "p50", "p90", "crisis_waiting", "crisis_chats", "crisis_p50",
               "crisis_p90", "available", "busy", "away", "chats", "crisis_overdue"];
const COLUMNS = 13;  // cells after the row header

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Numbers and words

function row_values(q) {
  const out = {};
  for (const [k, f] of Object.entries(FIELDS)) out[k] = num(q?.[f]);
  out.shortage = q?.shortage === true;
  return out;
}

export function format_duration(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const r = s % 60;
    return r ? `${m} min ${r} s` : `${m} min`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

// What a duration cell or legend shows when there is no such duration: a dash to the eye, and words
// to a screen reader (which would otherwise say nothing, or "dash").
function no_data() {
  const dash = document.createElement("span");
  dash.setAttribute("aria-hidden", "true");
  dash.textContent = "—";
  const words = document.createElement("span");
  words.className = "visually-hidden";
  words.textContent = i18n.t("dash.noData");
  return [dash, words];
}

// Coarse, so that the alert region's text changes at most once a minute (each change is announced).
function format_wait_coarse(s) {
  if (s < 60) return i18n.t("dash.underMinute");
  return format_duration(Math.floor(s / 60) * 60);
}

// Axis ticks for durations: short and whole.
function format_duration_tick(s) {
  if (s === 0) return "0";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 6) / 10} min`.replace(".0 ", " ");
  return `${Math.round(s / 360) / 10} h`.replace(".0 ", " ");
}

// `key`'s plural form for `n` (the string says where the number goes).
function plural(n, key) {
  return i18n.t(key, { count: n });
}

// ---------------------------------------------------------------------------------------------
// The catalogue: names for topic ids and language tags, and the order of the pairs.

const catalogue = { topics: new Map(), languages: new Map(), order: new Map() };

function load_catalogue(c) {
  const topics = Array.isArray(c?.topics) ? c.topics : [];
  const languages = Array.isArray(c?.languages) ? c.languages : [];
  for (const t of topics) catalogue.topics.set(t.id, t.name || t.id);  // English; topic_name() first asks the tables
  for (const l of languages) catalogue.languages.set(l.tag, l.name || l.tag);
  topics.forEach((t, ti) => {
    languages.forEach((l, li) => catalogue.order.set(pair_key(t.id, l.tag), ti * languages.length + li));
  });
}

function pair_key(topic, language) {
  return `${topic}|${language}`;
}

function pair_name(key) {
  const [topic, language] = key.split("|");
  return `${topic_name(topic)} · ${catalogue.languages.get(language) ?? language}`;
}

// A topic's name in the page's language: the known ids are in the string tables (topic.<id>), the
// catalogue's (English) name is for any other.
function topic_name(id) {
  const known = i18n.t(`topic.${id}`);
  return known !== `topic.${id}` ? known : (catalogue.topics.get(id) ?? id);
}

// A stable index per pair (catalogue order; pairs the catalogue lacks come after it).
const extra_order = new Map();
function pair_index(key) {
  const known = catalogue.order.get(key);
  if (known !== undefined) return known;
  if (!extra_order.has(key)) extra_order.set(key, catalogue.order.size + extra_order.size);
  return extra_order.get(key);
}

// ---------------------------------------------------------------------------------------------
// The last hour of samples: { t, total: values, waiting: Map(pair -> seekers waiting),
// accepted: Map(pair -> offers accepted, the running total) }

let samples = [];
let latest = null; // the newest snapshot's rows, for the table and the call-out

function to_sample(snap) {
  const waiting = new Map();
  const accepted = new Map();
  for (const q of Array.isArray(snap.queues) ? snap.queues : []) {
    const key = pair_key(q.topic, q.language);
    const w = num(q.seekersWaiting);
    if (w > 0) waiting.set(key, w);
    const a = num(q.offersAccepted);
    if (a > 0) accepted.set(key, a);
  }
  return { t: num(snap.atUnixMs), total: row_values(snap.total), waiting, accepted };
}

// The sample the wait percentiles at `t` start from: the newest taken before their 15 minutes, or
// the oldest we have when the hour does not reach back that far.
function window_base(t) {
  let base = samples[0];
  for (const s of samples) {
    if (s.t > t - WAIT_WINDOW_MS) break;
    base = s;
  }
  return base;
}

// Whether the wait percentiles of values `v` are real: only when an offer was accepted in their
// 15 minutes (the running total moved since `accepted_before`). Zero is then a real "under a
// second"; proto3 JSON leaves both out either way.
function has_waits(v, accepted_before) {
  return v.p50 > 0 || v.p90 > 0 || (v.accepted > 0 && v.accepted !== accepted_before);
}

function trim() {
  if (!samples.length) return;
  const cutoff = samples[samples.length - 1].t - KEEP_MS;
  let i = 0;
  while (i < samples.length && samples[i].t < cutoff) i++;
  if (i) samples = samples.slice(i);
}

// History (every 20 s) fills in only where we have no samples of our own: before the oldest and
// after the newest (the time we were disconnected).
function seed(history) {
  if (!Array.isArray(history) || !history.length) return;
  const oldest = samples.length ? samples[0].t : Infinity;
  const newest = samples.length ? samples[samples.length - 1].t : -Infinity;
  const add = history.map(to_sample).filter((s) => s.t > 0 && (s.t < oldest || s.t > newest));
  samples = samples.concat(add).sort((a, b) => a.t - b.t);
}

function append(snap) {
  const s = to_sample(snap);
  if (!s.t) return false;
  if (samples.length && s.t <= samples[samples.length - 1].t) return false;
  samples.push(s);
  const base = window_base(s.t);
  latest = {
    t: s.t,
    crisis_trend: {
      last: num(snap.crisisRequests5m), usual: num(snap.crisisRequestsUsual5m), spike: snap.crisisSpike === true,
    },
    total: { ...s.total, waits: has_waits(s.total, base.total.accepted) },
    rows: (Array.isArray(snap.queues) ? snap.queues : []).map((q) => {
      const key = pair_key(q.topic, q.language);
      const r = row_values(q);
      return { key, ...r, waits: has_waits(r, base.accepted.get(key) ?? 0) };
    }).sort((a, b) => pair_index(a.key) - pair_index(b.key)),
  };
  trim();
  return true;
}

// Gauges as [t, v] points, the maximum of each 10 s bucket so short peaks still show. `pick` may
// give null for "no value" (a break in the line), which a bucket keeps only if it has nothing else.
function gauge_points(pick) {
  const out = [];
  let bucket = null;
  for (const s of samples) {
    const b = Math.floor(s.t / BUCKET_MS);
    const v = pick(s);
    if (bucket === b) {
      const last = out[out.length - 1];
      last[0] = s.t;
      if (v !== null && (last[1] === null || v > last[1])) last[1] = v;
    } else {
      out.push([s.t, v]);
      bucket = b;
    }
  }
  return out;
}

// The increase of a cumulative counter in each of the last 60 minutes (ending at `end`), as
// [minute end, increase | null]; and the sum over the hour. A counter that went down (the
// database was emptied) counts from its new value.
function per_minute(field, end) {
  const last = new Array(61).fill(null);  // index 0 is the minute before the hour: the baseline
  const first = new Array(61).fill(null);
  for (const s of samples) {
    const i = 60 - Math.floor((end - s.t) / MINUTE_MS); // 60: the newest minute, 0: the baseline
    if (i < 0 || i > 60) continue;
    if (first[i] === null) first[i] = s.total[field];
    last[i] = s.total[field];
  }
  const points = [];
  let sum = 0;
  let prev = last[0];
  let latest_step = 0;
  for (let i = 1; i <= 60; i++) {
    const t = end - (60 - i) * MINUTE_MS;
    if (last[i] === null) { points.push([t, null]); continue; }
    const base = prev ?? first[i];
    const inc = last[i] >= base ? last[i] - base : last[i];
    points.push([t, inc]);
    sum += inc;
    prev = last[i];
    if (i === 60) latest_step = inc;
  }
  return { points, sum, last_minute: latest_step };
}

// ---------------------------------------------------------------------------------------------
// Rendering

let charts = null;
let dirty = false;

function build_charts() {
  const make = (id, options) => new LineChart($(id).querySelector(".chart-plot"), options);
  charts = {
    depth: make("chart-depth", { y_step: count_step }),
    longest: make("chart-longest", { y_step: duration_step, y_format: format_duration_tick, y_min_max: 60 }),
    percentiles: make("chart-percentiles", { y_step: duration_step, y_format: format_duration_tick, y_min_max: 60 }),
    listeners: make("chart-listeners", { y_step: count_step }),
    chats: make("chart-chats", { y_step: count_step }),
    offers: make("chart-offers", { y_step: count_step }),
    abandoned: make("chart-abandoned", { y_step: count_step }),
  };
}

function set_text(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function render() {
  if (!latest) return;
  render_crisis_spike();
  render_crisis_overdue();
  render_shortage();
  render_table();
  const when = new Date(latest.t);
  const time = $("updated-at");
  time.dateTime = when.toISOString();
  set_text(time, when.toLocaleTimeString(i18n.language()));
  if (document.hidden) { dirty = true; return; }
  render_charts();
}

// The body (a `tag` element under a heading) of a call-out region, made on first use; when `shown`
// is false the region is emptied and null returned.
function callout_body(region, shown, title_id, title, tag) {
  if (!shown) {
    if (region.firstChild) region.replaceChildren();
    region.classList.remove("active");
    return null;
  }
  let body = region.querySelector(tag);
  if (!body) {
    const heading = document.createElement("h2");
    heading.id = title_id;
    heading.textContent = title;
    body = document.createElement(tag);
    region.replaceChildren(heading, body);
    region.classList.add("active");
  }
  return body;
}

// A call-out lists pairs, one item each: `rows` with `detail(row)` after the pair's name. It lives in
// a role=alert region that stays in the page (so screen readers hear what is added), and is emptied
// when no pair needs it.
function render_callout(region, title_id, title, rows, detail) {
  const list = callout_body(region, rows.length > 0, title_id, title, "ul");
  if (!list) return;
  const wanted = new Map(rows.map((r) => [r.key, r]));
  for (const li of [...list.children]) {
    if (!wanted.has(li.dataset.key)) li.remove();
  }
  const have = new Map([...list.children].map((li) => [li.dataset.key, li]));
  rows.forEach((r, i) => {
    let li = have.get(r.key);
    if (!li) {
      li = document.createElement("li");
      li.dataset.key = r.key;
      const name = document.createElement("strong");
      name.className = "pair";
      name.textContent = pair_name(r.key);
      const detail = document.createElement("span");
      detail.className = "detail";
      li.append(name, detail);
    }
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    set_text(li.querySelector(".detail"), detail(r));
  });
}

// Seekers nobody may take now: every pair with no eligible listener online (shortage), or with
// waiting seekers whom no available listener may take (they declined or missed them, or were
// blocked; seekers_unservable).
function render_shortage() {
  render_callout($("shortage"), "shortage-title", i18n.t("dash.shortage.title"),
                 latest.rows.filter((r) => r.shortage || r.unservable > 0), (r) => (r.shortage
                   ? i18n.t("dash.shortage.none", { count: r.waiting, longest: format_wait_coarse(r.longest) })
                   : i18n.t("dash.shortage.unservable", { count: r.waiting, unservable: r.unservable })));
}

// Crisis requests nobody took within the matchmaker's --crisis-widen-ms: now offered to every
// listener of their language, and a matter for a supervisor at once.
function render_crisis_overdue() {
  render_callout($("crisis-overdue"), "crisis-overdue-title", i18n.t("dash.overdue.title"),
                 latest.rows.filter((r) => r.crisis_overdue > 0), (r) => {
                   const language = catalogue.languages.get(r.key.split("|")[1]);
                   return i18n.t(language ? "dash.overdue.detail" : "dash.overdue.detailAny",
                                 { count: r.crisis_overdue, language });
                 });
}

// Many more crisis requests than usual (the matchmaker's --crisis-alert-per-5min and
// --crisis-alert-factor decide): a local event, or someone flooding the crisis tier. Counts only.
function render_crisis_spike() {
  const t = latest.crisis_trend;
  const detail = callout_body($("crisis-spike"), t.spike, "crisis-spike-title", i18n.t("dash.spike.title"), "p");
  if (!detail) return;
  set_text(detail, i18n.t("dash.spike.detail", { count: t.last, usual: t.usual }));
}

function is_empty_row(r) {
  return SHOWN.every((k) => r[k] === 0);
}

// The cells' texts; null for a duration there is none of (shown as no_data()): no longest wait
// with nobody waiting, no wait percentiles without a chat that started in their 15 minutes. The
// crisis percentiles have no count of their own to tell "none" from "0 s", so 0 is "no data".
// Counts are always numbers, 0 included.
function cell_texts(r) {
  const duration = (known, s) => (known ? format_duration(s) : null);
  const crisis_waits = r.crisis_p50 > 0 || r.crisis_p90 > 0;
  return [
    String(r.waiting), String(r.unservable), duration(r.waiting > 0, r.longest), duration(r.waits, r.p50),
    duration(r.waits, r.p90),
    String(r.crisis_waiting), String(r.crisis_chats), duration(crisis_waits, r.crisis_p50),
    duration(crisis_waits, r.crisis_p90),
    String(r.available), String(r.busy), String(r.away), String(r.chats),
  ];
}

// The badges after a row's name: why its seekers need a person.
function badges(r) {
  const out = [];
  if (r.crisis_overdue > 0) out.push(["urgent", i18n.t("dash.badge.overdue")]);
  if (r.shortage) out.push(["", i18n.t("dash.badge.noListener")]);
  else if (r.unservable > 0) out.push(["", i18n.t("dash.col.unservable")]);
  return out;
}

function set_cell(node, text) {
  if (text !== null) set_text(node, text);
  else if (!node.querySelector(".visually-hidden")) node.replaceChildren(...no_data());
}

function fill_row(tr, name, r, badge_allowed = true) {
  const texts = cell_texts(r);
  if (!tr.firstChild) {
    const th = document.createElement("th");
    th.scope = "row";
    const label = document.createElement("span");
    label.className = "pair";
    th.append(label);
    tr.append(th);
    for (let i = 0; i < texts.length; i++) tr.append(document.createElement("td"));
  }
  const th = tr.firstChild;
  set_text(th.querySelector(".pair"), name);
  const wanted = badge_allowed ? badges(r) : [];
  const have = [...th.querySelectorAll(".badge")];
  if (have.map((b) => b.textContent).join("|") !== wanted.map(([, text]) => text).join("|")) {
    for (const b of have) { b.previousSibling?.remove(); b.remove(); }
    for (const [kind, text] of wanted) {
      const badge = document.createElement("span");
      badge.className = kind ? `badge ${kind}` : "badge";
      badge.textContent = text;
      th.append(" ", badge);
    }
  }
  tr.classList.toggle("short", wanted.length > 0);
  texts.forEach((text, i) => set_cell(tr.children[i + 1], text));
}

function render_table() {
  const body = $("queues-body");
  const rows = latest.rows.filter((r) => !is_empty_row(r));
  const have = new Map([...body.querySelectorAll("tr[data-key]")].map((tr) => [tr.dataset.key, tr]));
  const wanted = new Set(rows.map((r) => r.key));
  for (const [key, tr] of have) if (!wanted.has(key)) tr.remove();
  const empty = body.querySelector("tr.empty");
  if (!rows.length) {
    if (!empty) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = COLUMNS + 1;
      td.textContent = i18n.t("dash.empty");
      tr.append(td);
      body.append(tr);
    }
  } else if (empty) {
    empty.remove();
  }
  rows.forEach((r, i) => {
    let tr = have.get(r.key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = r.key;
    }
    fill_row(tr, pair_name(r.key), r);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
  });
  fill_row($("queues-total"), i18n.t("dash.all"), latest.total, false);
}

// items: { index, text, area, no_data } (no_data: the text is followed by no_data())
function legend(id, items) {
  const ul = $(id).querySelector(".legend");
  const wanted = items.map((it) => `${it.index}|${it.text}|${it.no_data ? 1 : 0}`).join("\n");
  if (ul.dataset.items === wanted) return;
  ul.dataset.items = wanted;
  ul.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    li.append(swatch(it.index, { area: it.area }), document.createTextNode(it.text));
    if (it.no_data) li.append(...no_data());
    return li;
  }));
}

// The samples whose total has wait percentiles (has_waits), each judged against its own 15 minutes.
function samples_with_waits() {
  const out = new Set();
  let j = 0;
  for (const s of samples) {
    while (samples[j + 1] && samples[j + 1].t <= s.t - WAIT_WINDOW_MS) j++;
    if (has_waits(s.total, samples[j].total.accepted)) out.add(s);
  }
  return out;
}

function render_charts() {
  dirty = false;
  if (!charts || !latest || !samples.length) return;
  const end = latest.t;
  const start = end - HOUR_MS;
  const in_window = samples.filter((s) => s.t >= start);
  const covered_min = Math.max(1, Math.round((end - in_window[0].t) / MINUTE_MS));
  const span = covered_min >= 59 ? i18n.t("dash.span.hour") : plural(covered_min, "dash.span.minutes");
  const t = latest.total;

  // Queue depth: one line per pair that had someone waiting at some point in the hour.
  const pairs = new Set();
  for (const s of in_window) for (const k of s.waiting.keys()) pairs.add(k);
  const keys = [...pairs].sort((a, b) => pair_index(a) - pair_index(b));
  const now_waiting = latest.rows.filter((r) => r.waiting > 0);
  charts.depth.update({
    start, end,
    series: keys.map((k) => ({ index: pair_index(k), points: gauge_points((s) => s.waiting.get(k) ?? 0) })),
    label: i18n.t("dash.depth.label", { span }) + " " +
      (now_waiting.length
        ? i18n.t("dash.depth.now", { list: now_waiting.map((r) => `${pair_name(r.key)} ${r.waiting}`).join(", ") })
        : i18n.t("dash.depth.nobody")) +
      (keys.length ? " " + i18n.t("dash.depth.peak", { count: Math.max(...in_window.map((s) => s.total.waiting)) }) : ""),
  });
  legend("chart-depth", keys.length
    ? keys.map((k) => ({ index: pair_index(k), text: i18n.t("dash.depth.legend", { pair: pair_name(k), count: (latest.rows.find((r) => r.key === k)?.waiting) ?? 0 }) }))
    : []);
  set_text($("chart-depth").querySelector(".chart-empty"), keys.length ? "" : i18n.t("dash.depth.empty", { span }));

  const waited = in_window.filter((s) => s.total.waiting > 0);
  charts.longest.update({
    start, end,
    series: [{ index: 3, area: true, points: gauge_points((s) => s.total.longest) }],
    label: i18n.t(t.waiting ? "dash.longest.label" : "dash.longest.labelNobody", { span, now: format_duration(t.longest) }) + " " +
      (waited.length
        ? i18n.t("dash.longest.highest", { value: format_duration(Math.max(...waited.map((s) => s.total.longest))) })
        : i18n.t("dash.longest.none", { span })),
  });

  // No chat started in a sample's 15 minutes: no point, so the lines break instead of lying at 0.
  const with_waits = samples_with_waits();
  const wait_at = (field) => (s) => (with_waits.has(s) ? s.total[field] : null);
  charts.percentiles.update({
    start, end,
    series: [
      { index: 0, points: gauge_points(wait_at("p50")) },
      { index: 12, points: gauge_points(wait_at("p90")) },
    ],
    label: i18n.t("dash.percentiles.label", { span }) + " " +
      (t.waits
        ? i18n.t("dash.percentiles.now", { p50: format_duration(t.p50), p90: format_duration(t.p90) })
        : i18n.t("dash.percentiles.none")),
  });
  legend("chart-percentiles", [
    { index: 0, text: i18n.t("dash.legend.p50", { value: t.waits ? format_duration(t.p50) : "" }), no_data: !t.waits },
    { index: 12, text: i18n.t("dash.legend.p90", { value: t.waits ? format_duration(t.p90) : "" }), no_data: !t.waits },
  ]);

  charts.listeners.update({
    start, end,
    series: [
      { index: 2, points: gauge_points((s) => s.total.available) },
      { index: 9, points: gauge_points((s) => s.total.busy) },
      { index: 23, points: gauge_points((s) => s.total.away) },
    ],
    label: i18n.t("dash.listeners.label", { span, available: t.available, busy: t.busy, away: t.away }),
  });
  legend("chart-listeners", [
    { index: 2, text: i18n.t("dash.legend.available", { n: t.available }) },
    { index: 9, text: i18n.t("dash.legend.busy", { n: t.busy }) },
    { index: 23, text: i18n.t("dash.legend.away", { n: t.away }) },
  ]);

  charts.chats.update({
    start, end,
    series: [{ index: 5, area: true, points: gauge_points((s) => s.total.chats) }],
    label: i18n.t("dash.chats.label", { span, now: t.chats, highest: Math.max(...in_window.map((s) => s.total.chats)) }),
  });

  const acc = per_minute("accepted", end);
  const dec = per_minute("declined", end);
  const tim = per_minute("timed_out", end);
  charts.offers.update({
    start, end, gap_ms: 90_000,
    series: [
      { index: 2, points: acc.points },
      { index: 9, points: dec.points },
      { index: 19, points: tim.points },
    ],
    label: i18n.t("dash.offers.label", { span, accepted: acc.last_minute, declined: dec.last_minute, timedOut: tim.last_minute,
                                         acceptedAll: acc.sum, declinedAll: dec.sum, timedOutAll: tim.sum }),
  });
  legend("chart-offers", [
    { index: 2, text: i18n.t("dash.legend.accepted", { n: acc.sum }) },
    { index: 9, text: i18n.t("dash.legend.declined", { n: dec.sum }) },
    { index: 19, text: i18n.t("dash.legend.timedOut", { n: tim.sum }) },
  ]);
  set_text($("chart-offers").querySelector(".chart-note"),
    i18n.t("dash.offers.note", { span }));

  const ab = per_minute("abandoned", end);
  charts.abandoned.update({
    start, end, gap_ms: 90_000,
    series: [{ index: 1, area: true, points: ab.points }],
    label: i18n.t("dash.abandoned.label", { span, last: ab.last_minute, all: ab.sum }),
  });
  set_text($("chart-abandoned").querySelector(".chart-note"),
    i18n.t("dash.abandoned.note", { count: ab.sum, span }));
}

function clear_data() {
  samples = [];
  latest = null;
  for (const id of ["shortage", "crisis-overdue", "crisis-spike"]) {
    $(id).replaceChildren();
    $(id).classList.remove("active");
  }
  $("queues-body").replaceChildren();
  for (const td of $("queues-total").querySelectorAll("td")) td.textContent = "";
  support_requests.clear();
  $("support-list").replaceChildren();
  reviews.close();
  $("support-chats").replaceChildren();
  render_support();
}

// ---------------------------------------------------------------------------------------------
// Views and status

function show_signin(message = "") {
  $("dashboard").hidden = true;
  $("signin").hidden = false;
  $("sign-out").hidden = true;
  $("signin-button").disabled = false;
  set_text($("signin-error"), message);
  set_status("");
}

function show_dashboard() {
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
}

function set_status(text, state = "") {
  const el = $("conn");
  set_text(el, text);
  el.dataset.state = state;
  document.body.classList.toggle("stale", state === "retrying" || state === "paused");
}

// ---------------------------------------------------------------------------------------------
// The connection

let config = null;
let token = "";
let mm = null;
let last_message_at = 0;
let focus_on_sign_in = false;
let paused = false;  // the matchmaker said it lost its database: no snapshots until it is back

// A connection that signs in with `token` each time it opens, until it is refused, revoked (4003)
// or signed out; in between it reconnects with backoff.
function connect() {
  if (mm) mm.close();
  if (!token) return;
  mm = new Matchmaker(config.matchmakerUrl, { signIn: sign_in, onPush: on_push, onStatus: on_status, backoff: BACKOFF });
  mm.start();
}

async function sign_in(m) {
  const reply = await m.request({ supervisorSignIn: { token } }, { alone: true });
  if (!reply.stats) throw new ServiceError("INTERNAL", i18n.t("dash.unexpected"));
  on_signed_in(reply.stats);
}

function on_push(msg) {
  last_message_at = Date.now();
  if (msg.stats) reviews.setOpenCount(num(msg.stats.reportsOpen));
  if (msg.stats && append(msg.stats)) render();
  else if (msg.service) set_paused(msg.service.degraded === true);
  else if (msg.support) support_update(msg.support);
  else if (msg.supportLine) support_requests.get(msg.supportLine.supportId)?.chat?.receive(msg.supportLine);
}

// ---------------------------------------------------------------------------------------------
// Listeners asking for support: a call-out per open request (who asks, when, how many chats they
// have open: never what was said); "Talk with them" answers it and opens the private side chat
// (js/support_chat.js). Another supervisor's answer turns the call-out into "X is with them".

const support_requests = new Map();  // support id -> { el, chat, key }

// The safety team's review queue (js/review_queue.js): its count follows every snapshot.
const reviews = new ReviewQueue({
  call: (b) => (mm ? mm.call(b) : Promise.reject(new Error(i18n.t("dash.reviews.failed")))),
  topicName: (id) => topic_name(id),
  languageName: (tag) => catalogue.languages.get(tag) ?? tag,
});

// The call-out's sentence for request `u`, as [key, params] for i18n.localize.
function support_text(u) {
  const name = u.listenerName || i18n.t("support.theListener");
  if (u.state === "SUPPORT_ANSWERED") return ["dash.support.with", { supervisor: u.supervisorName || i18n.t("support.aSupervisor"), name }];
  const time = new Date(num(u.askedUnixMs)).toLocaleTimeString(i18n.language(), { hour: "2-digit", minute: "2-digit" });
  return ["dash.support.asked", { name, time, count: num(u.listenerOpenChats) }];
}

function support_update(u) {
  let entry = support_requests.get(u.supportId);
  if (u.state === "SUPPORT_CLOSED") {
    if (!entry) return;
    entry.el.remove();
    if (entry.chat) entry.chat.finish(u);
    else support_requests.delete(u.supportId);
    render_support();
    return;
  }
  if (!entry) {
    const text = h("p", {});
    const answer = h("button", { type: "button", i18n: "dash.support.answer" });
    const error = h("p", { class: "dash-error" });
    entry = { el: h("li", {}, text, answer, error), text, answer, error, chat: null };
    answer.addEventListener("click", () => answer_support(u.supportId));
    support_requests.set(u.supportId, entry);
    $("support-list").append(entry.el);
  }
  i18n.localize(entry.text, ...support_text(u));
  entry.answer.hidden = u.state !== "SUPPORT_WAITING";
  if (entry.chat) entry.chat.update(u);
  render_support();
}

function render_support() {
  const open = [...support_requests.values()].some((e) => e.el.isConnected);
  $("support-requests").hidden = !open;
}

async function answer_support(id) {
  const entry = support_requests.get(id);
  if (!entry || !mm) return;
  entry.answer.disabled = true;
  try {
    const key = await supportKey();
    const reply = await mm.call({ answerSupport: { supportId: id, publicKey: key.publicKey } });
    entry.chat = new SupportChat({ me: "SUPERVISOR", call: (b) => mm.call(b), privateKey: key.privateKey,
                                   title: ["support.titleSupervisor", { name: reply.support.listenerName || i18n.t("support.theListener") }] });
    $("support-chats").append(entry.chat.root);
    support_update(reply.support);
    entry.chat.input.focus();
  } catch (e) {
    set_text(entry.error, e.message || i18n.t("dash.support.failed"));
  } finally {
    entry.answer.disabled = false;
  }
}

// While the matchmaker has lost its database there are no numbers to show: the last ones stay,
// dimmed, and the page says the feed is paused rather than looking live or broken.
function set_paused(on) {
  if (on === paused) return;
  paused = on;
  if (on) set_status(i18n.t("dash.paused"), "paused");
  else set_status(i18n.t("dash.live"), "live");
}

function on_status(s) {
  if (s.state === "connecting") {
    if ($("conn").dataset.state === "retrying") set_status(i18n.t("common.reconnecting"), "retrying");
  } else if (s.state === "reconnecting") {
    const seconds = plural(Math.max(1, Math.round(s.delayMs / 1000)), "dash.seconds");
    // a sign-in that could not be checked says why (the server's sentence)
    const why = s.error?.message ? `${s.error.message} ` : "";
    if ($("dashboard").hidden) {
      // Still on the sign-in form: say so there.
      set_text($("signin-error"), why + i18n.t("dash.unreachable", { seconds }));
    }
    set_status(why + i18n.t("dash.reconnectingIn", { seconds }), "retrying");
  } else if (s.state === "refused") {
    const refused = s.error?.code === "UNAUTHENTICATED";
    signed_out(refused
      ? i18n.t("dash.refused")
      : `${s.error?.message || i18n.t("dash.notAccepted")} ${i18n.t("dash.tryAgain")}`, refused);
  } else if (s.state === "closed") {
    // 4003: the account was revoked, or its token replaced. Another final close code is not ours
    // to retry either.
    const replaced = s.code === 4003 && /replaced/.test(s.reason || "");
    signed_out(replaced
      ? i18n.t("common.tokenReplaced")
      : s.code === 4003
      ? i18n.t("dash.revoked")
      : i18n.t("dash.disconnected"), s.code === 4003);
  }
}

function on_signed_in(stats) {
  last_message_at = Date.now();
  paused = false;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  seed(stats.history);
  append(stats);
  for (const u of stats.support || []) support_update(u);
  reviews.setOpenCount(num(stats.reportsOpen));
  show_dashboard();
  set_status(i18n.t("dash.live"), "live");
  render();
  if (focus_on_sign_in) {
    focus_on_sign_in = false;
    $("now-title").focus();
  }
}

// Back to the sign-in form with `message`: the feed stops and its numbers go. `forget` also drops
// the token from this tab (refused, revoked or signed out), so a reload does not sign in again.
function signed_out(message, forget) {
  if (mm) { mm.close(); mm = null; }
  if (forget) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
  }
  clear_data();
  show_signin(message);
  $("token").focus();
}

// A feed that is open but silent for longer than a few snapshot intervals is presumed dead (unless
// the matchmaker said it is paused: then silence is expected until it says it is back).
setInterval(() => {
  if (mm && mm.ready && !paused && Date.now() - last_message_at > STALE_MS) mm.drop();
}, 1000);

window.addEventListener("online", () => {
  if (mm && !mm.ready && !mm.stopped) mm.reconnectNow();
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && dirty) render_charts();
});

// ---------------------------------------------------------------------------------------------
// Start

function on_submit(ev) {
  ev.preventDefault();
  const value = $("token").value.trim();
  if (!value) {
    set_text($("signin-error"), i18n.t("dash.tokenEmpty"));
    $("token").focus();
    return;
  }
  token = value;
  focus_on_sign_in = true;
  set_text($("signin-error"), "");
  set_status(i18n.t("common.signingIn"), "connecting");
  connect();
}

function on_sign_out() {
  signed_out(i18n.t("common.signedOut"), true);
}

async function main() {
  i18n.startLanguage();
  $("sign-out").before(i18n.languagePicker());
  i18n.onLanguage(() => {
    // the call-outs' headings and the empty table's line are made once: make them again
    for (const id of ["shortage", "crisis-overdue", "crisis-spike"]) $(id).replaceChildren();
    $("queues-body").querySelector("tr.empty")?.remove();
    if ($("conn").dataset.state === "live") set_status(i18n.t("dash.live"), "live");
    render();
  });
  $("signin-form").addEventListener("submit", on_submit);
  $("sign-out").addEventListener("click", on_sign_out);
  $("signin-button").disabled = true;
  build_charts();
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    if (!res.ok) throw new Error(String(res.status));
    config = await res.json();
  } catch {
    set_text($("signin-error"), i18n.t("dash.configFailed"));
    return;
  }
  load_catalogue(config.catalogue);
  reviews.mount($("reviews"));
  reviews.setOpenCount(0);
  $("signin-button").disabled = false;
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    token = saved;
    set_status(i18n.t("dash.signingInAgain"), "connecting");
    connect();
  }
}

main();

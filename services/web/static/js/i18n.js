// The language the pages speak: one table of strings per language (js/strings/<tag>.js, shipped
// with the page, never fetched), t() to look a string up, and the data-i18n attributes that let a
// page say everything again at once when the person picks another language. The choice is kept in
// this tab's sessionStorage only (the seeker's quick exit clears it with the rest).

import en from "./strings/en.js";
import es from "./strings/es.js";
import de from "./strings/de.js";
import ptBR from "./strings/pt-BR.js";

export const TABLES = { en, es, de, "pt-BR": ptBR };
export const LANGUAGES = Object.keys(TABLES);
const STORE = "wl.lang";

// The first of `wanted` (BCP 47 tags, best first) that one of `available` serves: the same tag, or
// else the same language (pt and pt-PT → pt-BR, es-MX → es); null when none does.
export function matchLanguage(available, wanted) {
  const lower = available.map((a) => String(a).toLowerCase());
  for (const w of wanted) {
    const tag = String(w || "").toLowerCase();
    if (!tag) continue;
    const exact = lower.indexOf(tag);
    if (exact >= 0) return available[exact];
    const primary = tag.split("-")[0];
    const same = lower.findIndex((a) => a.split("-")[0] === primary);
    if (same >= 0) return available[same];
  }
  return null;
}

// The browser's languages, best first.
export function browserLanguages() {
  return navigator.languages && navigator.languages.length ? [...navigator.languages] : [navigator.language];
}

// What this tab chose earlier, if anything.
export function storedLanguage() {
  try { return sessionStorage.getItem(STORE) || ""; } catch { return ""; }
}

let current = "en";
let rules = new Intl.PluralRules("en");
// CLDR counts 0 as "one" in Brazilian Portuguese; people write "0 pedidos", as in Portugal.
const PLURAL_RULES_OF = { "pt-BR": "pt-PT" };
const changeHandlers = [];

export const language = () => current;

// Speaks `tag` (or, when there is no table for it, the browser's language, else English); `keep`
// remembers it as this tab's choice. Everything marked with data-i18n is said again at once, and
// the page's own handlers (onLanguage) redo what they built.
export function setLanguage(tag, { keep = true } = {}) {
  const chosen = matchLanguage(LANGUAGES, [tag]) || matchLanguage(LANGUAGES, browserLanguages()) || "en";
  if (keep) { try { sessionStorage.setItem(STORE, chosen); } catch { /* kept in memory */ } }
  const changed = chosen !== current;
  current = chosen;
  rules = new Intl.PluralRules(PLURAL_RULES_OF[chosen] || chosen);
  document.documentElement.lang = chosen;
  applyStrings(document);
  if (changed) for (const fn of changeHandlers) fn(chosen);
  return chosen;
}

// At start: this tab's earlier choice, else the browser's languages, else English.
export function startLanguage() {
  return setLanguage(storedLanguage() || matchLanguage(LANGUAGES, browserLanguages()) || "en", { keep: false });
}

export function onLanguage(fn) { changeHandlers.push(fn); }

// The string `key` in the current language (English when the table lacks it), with each {name}
// replaced by params.name. A string that depends on a number is an object of plural forms
// ({one, other}, and whatever else the language needs), chosen by params.count.
export function t(key, params = {}) {
  let s = TABLES[current][key] ?? en[key];
  if (s === undefined) return key;
  if (typeof s === "object") s = s[rules.select(Number(params.count))] ?? s.other;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// A sentence the server sent (a refusal, a status change's reason) in the page's language when
// the page knows it: the English table holds the server's sentences word for word, and a few with
// a number in them are matched by shape (SERVER_PATTERNS); anything else is shown as it came.
const SERVER_PATTERNS = [
  [/^You are on a break for (\d+) more minutes?\. Rest well\.$/, "listener.refuse.onBreak"],
  [/^That's your (\d+) chats for today\. Thank you! You can take chats again tomorrow\.$/, "listener.refuse.dayCap"],
];
let englishIndex = null;
export function fromServer(text) {
  if (!text || current === "en") return text;
  englishIndex ??= new Map(Object.entries(en).filter(([, v]) => typeof v === "string").map(([k, v]) => [v, k]));
  const key = englishIndex.get(text);
  if (key) return t(key);
  for (const [re, k] of SERVER_PATTERNS) {
    const m = re.exec(text);
    if (m) return t(k, { count: Number(m[1]) });
  }
  return text;
}

// Gives `el` the text of `key` and marks it, so that a change of language says it again.
export function localize(el, key, params) {
  el.dataset.i18n = key;
  if (params) el.dataset.i18nArgs = JSON.stringify(params); else delete el.dataset.i18nArgs;
  el.textContent = t(key, params);
  return el;
}

// Takes the mark off (the element's text is now something else: the server's words, nothing).
export function unlocalize(el) {
  delete el.dataset.i18n;
  delete el.dataset.i18nArgs;
}

// The attributes a page may mark as data-i18n-<attribute>="key".
const ATTRIBUTES = ["aria-label", "title", "placeholder"];

// Says again, in the current language, every marked text and attribute in `root`.
export function applyStrings(root = document) {
  const all = (sel) => [...(root.matches && root.matches(sel) ? [root] : []), ...root.querySelectorAll(sel)];
  for (const el of all("[data-i18n]")) {
    let params;
    try { params = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined; } catch { params = undefined; }
    el.textContent = t(el.dataset.i18n, params);
  }
  for (const attr of ATTRIBUTES) {
    for (const el of all(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
  }
}

// A small "Language" choice for a page header, in each language's own name.
export function languagePicker(id = "ui-language") {
  const select = document.createElement("select");
  select.id = id;
  select.className = "ui-language";
  select.setAttribute("data-i18n-aria-label", "lang.picker");
  for (const tag of LANGUAGES) {
    const option = document.createElement("option");
    option.value = tag;
    option.lang = tag;
    option.textContent = TABLES[tag]["lang.self"];
    select.append(option);
  }
  select.value = current;
  select.setAttribute("aria-label", t("lang.picker"));
  select.addEventListener("change", () => setLanguage(select.value));
  onLanguage((tag) => { select.value = tag; });
  return select;
}

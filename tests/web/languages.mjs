// What the language specs share: the pages' string tables (read from the static files the web
// server serves, so the specs check what the browser gets), the strings that are the same as the
// English by intent, and a check that finds English left on a page that speaks another language.
// (Not under specs/: run.mjs runs every file there.)
import { readFile, readdir } from "node:fs/promises";

const JS = new URL("../../services/web/static/js/", import.meta.url);

// Each table as the browser gets it (a data: URL, since the static files are browser modules that
// this package's node would not take as ES modules by their name alone).
async function loadTable(file) {
  const source = await readFile(new URL(`strings/${file}`, JS), "utf8");
  return (await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`)).default;
}

export const TABLES = {};
for (const file of (await readdir(new URL("strings/", JS))).filter((f) => f.endsWith(".js")).sort()) {
  TABLES[file.slice(0, -3)] = await loadTable(file);
}
export const LANGUAGES = Object.keys(TABLES);
const I18N_SOURCE = await readFile(new URL("i18n.js", JS), "utf8");
export const en = TABLES.en;
export const OTHERS = LANGUAGES.filter((l) => l !== "en");

// Keys whose text is the same as the English on purpose, per language; any other text equal to the
// English is a string nobody translated. Keep this short.
export const SAME_AS_ENGLISH = {
  // "Chats", "Chat {n}: {topic}", "{list}.", "Supervisor:", "Chat"
  es: ["listener.chats.tablist", "listener.chat.label", "dash.depth.now", "support.supervisor", "dash.reviews.chat"],
  de: ["listener.chats.tablist", "listener.chat.label", "dash.depth.now", "dash.legend.p50", "dash.live"],
  "pt-BR": ["dash.depth.now", "support.supervisor"],
};

// Keys that name a language in that language ("English", "Deutsch"): shown as they are in every
// language, marked with their own lang attribute.
const OWN_NAME = new Set(["lang.self"]);

const forms = (v) => (typeof v === "object" ? Object.values(v) : [v]);
const params = (s) => new Set(s.match(/\{\w+\}/g) || []);

// What is wrong with the tables: a table i18n.js does not import, a key missing from a language or unknown to English, a parameter
// of the English missing from a translation ({count} may be left out of the singular form, which
// may say the number in words), plural forms the English has and a translation lacks, a text equal to the English that is not in SAME_AS_ENGLISH, or an
// allowance for a text that is no longer the same.
export function tableProblems() {
  const out = [];
  if (!en) out.push("there is no English table");
  for (const lang of LANGUAGES) {
    if (!I18N_SOURCE.includes(`"./strings/${lang}.js"`)) out.push(`${lang}: strings/${lang}.js is not imported by i18n.js`);
  }
  for (const lang of OTHERS) {
    const table = TABLES[lang];
    for (const key of Object.keys(en)) if (!(key in table)) out.push(`${lang}: ${key} is missing`);
    for (const key of Object.keys(table)) if (!(key in en)) out.push(`${lang}: ${key} is not in en`);
    for (const [key, value] of Object.entries(en)) {
      if (!(key in table)) continue;
      const want = params(forms(value).join(" "));
      const theirs = table[key];
      // a translation may need plural forms where the English has one text, not the other way round
      if (typeof value === "object" && typeof theirs !== "object") { out.push(`${lang}: ${key} lacks plural forms`); continue; }
      for (const [form, text] of typeof theirs === "object" ? Object.entries(theirs) : [["", theirs]]) {
        for (const p of want) {
          if (p === "{count}" && form === "one") continue;
          if (!text.includes(p)) out.push(`${lang}: ${key}${form ? `.${form}` : ""} lacks ${p}`);
        }
      }
      if (typeof theirs === "object" && !("other" in theirs)) out.push(`${lang}: ${key} has no "other" form`);
      const same = JSON.stringify(value) === JSON.stringify(theirs);
      const allowed = SAME_AS_ENGLISH[lang].includes(key) || OWN_NAME.has(key);
      if (same && !allowed) out.push(`${lang}: ${key} is still English: ${JSON.stringify(value)}`);
      if (!same && SAME_AS_ENGLISH[lang].includes(key)) out.push(`${lang}: ${key} is allowed to be English but is not`);
    }
  }
  return out;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// The English strings a page in `lang` must not show, each as [key, anchored pattern, unanchored
// pattern or null]. A {param} matches anything. The unanchored pattern, for strings of three words
// or more, finds an English sentence inside a longer text.
function englishPatterns(lang) {
  const out = [];
  for (const [key, value] of Object.entries(en)) {
    if (OWN_NAME.has(key) || SAME_AS_ENGLISH[lang].includes(key)) continue;
    for (const text of forms(value)) {
      const body = text.trim().split(/\{\w+\}/).map(escape).join("[\\s\\S]+?").replace(/\s+/g, "\\s+");
      if (!body.replace(/\[\\s\\S\]\+\?/g, "").trim()) continue;  // nothing but parameters
      const words = text.replace(/\{\w+\}/g, " ").trim().split(/\s+/).length;
      out.push([key, new RegExp(`^${body}$`), words >= 3 ? new RegExp(`(^|\\W)${body}($|\\W)`) : null]);
    }
  }
  return out;
}

// The pieces a text is read as: the whole, what " · " separates, and its sentences.
function pieces(text) {
  const out = new Set([text]);
  for (const part of text.split(/\s+·\s+/)) out.add(part.trim());
  for (const sentence of text.split(/(?<=[.!?…:;])\s+/)) out.add(sentence.trim());
  return [...out].filter(Boolean);
}

// Of `items` ({where, text}, from textsOf), those that are English in a page speaking `lang`.
export function untranslated(items, lang) {
  const patterns = englishPatterns(lang);
  const found = [];
  for (const { where, text } of items) {
    const hit = patterns.find(([, whole, inside]) =>
      pieces(text).some((p) => whole.test(p)) || (inside && inside.test(text)));
    if (hit) found.push(`${where}: ${JSON.stringify(text)} (en ${hit[0]})`);
  }
  return found;
}

// Every text of `page` a person may see or hear: each text node of the body (visible or not yet:
// hidden screens and messages are in the page's language too), every aria-label, title,
// placeholder and alt, and the document's title; not <noscript> (raw text while scripts run), nor
// what is marked as being in another language (a language's own name in a language picker).
export async function textsOf(page) {
  return page.evaluate(() => {
    const out = [];
    const root = document.documentElement;
    const where = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}${el.className && typeof el.className === "string" ? `.${el.className.split(" ")[0]}` : ""}`;
    const foreign = (el) => { const l = el.closest("[lang]"); return !!l && l !== root && l.lang !== root.lang; };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest("noscript, script, style") || foreign(el)) continue;
      const text = n.textContent.replace(/\s+/g, " ").trim();
      if (text) out.push({ where: where(el), text });
    }
    for (const attr of ["aria-label", "title", "placeholder", "alt", "aria-description"]) {
      for (const el of document.querySelectorAll(`[${attr}]`)) {
        if (el.closest("noscript") || foreign(el)) continue;
        const text = el.getAttribute(attr).replace(/\s+/g, " ").trim();
        if (text) out.push({ where: `${where(el)}[${attr}]`, text });
      }
    }
    out.push({ where: "title", text: document.title });
    return out;
  });
}

// A pattern for the string `key` in any of the languages, for specs that find an element by its
// words whatever the page speaks (a seeker's page speaks the language the seeker chose). Each
// {name} matches `params[name]` (a regular expression's source) or else anything; `whole` anchors
// it to the whole text.
export function anyLanguage(key, params = {}, { whole = true } = {}) {
  const alternatives = new Set();
  for (const table of Object.values(TABLES)) {
    for (const text of forms(table[key])) {
      alternatives.add(text.trim().split(/(\{\w+\})/).map((part) => {
        const name = /^\{(\w+)\}$/.exec(part)?.[1];
        return name ? (name in params ? `(?:${params[name]})` : "[\\s\\S]+?") : escape(part);
      }).join(""));
    }
  }
  const body = `(?:${[...alternatives].join("|")})`;
  return new RegExp(whole ? `^${body}$` : body);
}

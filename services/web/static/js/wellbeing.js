// The listener's wellbeing limits on their desk (ListenerProfile: chats per day, a break after N
// chats or M minutes on duty, set by an admin and enforced by the matchmaker): one sentence
// saying where they stand, with the break's countdown. Pure, so the desk calls it every second.

import { num } from "./matchmaker.js";
import { t, language } from "./i18n.js";

const clock = (ms) => new Date(ms).toLocaleTimeString(language(), { hour: "2-digit", minute: "2-digit" });

function left(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// `extraToday`: chats accepted on this page since the profile was read.
export function wellbeingText(p, now, extraToday = 0) {
  if (!p) return "";
  const until = num(p.breakUntilUnixMs);
  if (p.suspended) return t("listener.wellbeing.suspended");
  if (p.breakDue) {
    if (!until) return t("listener.wellbeing.breakDue");
    if (until > now) return t("listener.wellbeing.breakLeft", { left: left(until - now) });
    return t("listener.wellbeing.breakOver");
  }
  const perDay = num(p.chatsPerDay);
  const today = num(p.chatsToday) + extraToday;
  if (perDay && today >= perDay) return t("listener.wellbeing.dayDone", { count: perDay });
  const parts = [];
  if (perDay) parts.push(t("listener.wellbeing.moreToday", { count: perDay - today }));
  const afterChats = num(p.breakAfterChats);
  if (afterChats) {
    const more = Math.max(1, afterChats - num(p.chatsSinceBreak) - extraToday);
    parts.push(t("listener.wellbeing.breakAfter", { count: more }));
  }
  const afterMin = num(p.breakAfterMin);
  const since = num(p.onDutySinceUnixMs);
  if (afterMin && since) parts.push(t("listener.wellbeing.breakAt", { time: clock(since + afterMin * 60000) }));
  if (!parts.length) return "";
  const text = parts.join(", ");
  return t("listener.wellbeing.summary", { text: `${text[0].toUpperCase()}${text.slice(1)}`, minutes: num(p.breakMin) || 15 });
}

// The listener's wellbeing limits on their desk (ListenerProfile: chats per day, a break after N
// chats or M minutes on duty, set by an admin and enforced by the matchmaker): one sentence
// saying where they stand, with the break's countdown. Pure, so the desk calls it every second.

import { num } from "./matchmaker.js";

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function left(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// `extraToday`: chats accepted on this page since the profile was read.
export function wellbeingText(p, now, extraToday = 0) {
  if (!p) return "";
  const until = num(p.breakUntilUnixMs);
  if (p.breakDue) {
    if (!until) return "Time for a break: it starts when your open chats end. No new requests meanwhile.";
    if (until > now) return `Your break: ${left(until - now)} left. Rest well; you can be available again after it.`;
    return "Your break is over. Switch to Available whenever you're ready.";
  }
  const perDay = num(p.chatsPerDay);
  const today = num(p.chatsToday) + extraToday;
  if (perDay && today >= perDay) return `That's your ${perDay} chats for today. Thank you!`;
  const parts = [];
  if (perDay) parts.push(`${perDay - today} more chat${perDay - today === 1 ? "" : "s"} today`);
  const afterChats = num(p.breakAfterChats);
  if (afterChats) {
    const more = Math.max(1, afterChats - num(p.chatsSinceBreak) - extraToday);
    parts.push(`a break after ${more} more chat${more === 1 ? "" : "s"}`);
  }
  const afterMin = num(p.breakAfterMin);
  const since = num(p.onDutySinceUnixMs);
  if (afterMin && since) parts.push(`a break at ${clock(since + afterMin * 60000)}`);
  if (!parts.length) return "";
  const text = parts.join(", ");
  return `${text[0].toUpperCase()}${text.slice(1)} (${num(p.breakMin) || 15}-minute breaks).`;
}

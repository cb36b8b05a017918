// One end-to-end encrypted chat through the relay (docs/relay-protocol.md, docs/e2e.md): the key
// pair, hello with receivedThrough, resending what the relay has not stored, acks, opening what
// the other side sends in order and exactly once, receipts, typing, read, end and reconnecting.
// What this side says is kept, sealed, until the other side's receipt (peerReceived) covers it,
// not only until the relay's ack, so that it can be sent again if Redis lost it; what nobody has
// any more is passed over (skip, lost) with a note in the conversation on both sides, as the
// terminal client does (loadtest/chat_session.hpp). Everything a page reload must not lose lives
// in this tab's sessionStorage under one key per chat, and is wiped when the chat ends; the
// private key is the exception: a non-extractable CryptoKey in IndexedDB (keystore.js). Tickets
// stay in memory only: the first hello of each relay connection carries one and its welcome gives
// the next; after a reload, or when the relay refuses one, the owner fetches a fresh one from the
// matchmaker (event "needticket"). A chat belongs to one tab at a time: the tab that opened it
// last holds its Web Lock, and a tab that loses the lock stops at once ("replaced"); messages are
// sealed only after this connection's welcome, which says which numbers are taken.
// Nothing here logs; keys, tickets and texts must never reach the console.

import * as e2e from "./e2e.js";
import * as keystore from "./keystore.js";
import { follow, backoffDelay } from "./reconnect.js";
import { t } from "./i18n.js";

const STORE_PREFIX = "wl.chat.";
let swept = false;  // old keys are swept from IndexedDB once per page
const RELAY_BACKOFF = { firstMs: 400, maxMs: 15000 };
const MAX_HELD = 1000;
// Hellos again on one connection (a send refused with WRONG_STATE) with no ack in between before
// this page stops trusting the connection and reconnects with backoff instead.
const MAX_RESYNCS = 3;
// The reason finish() gets when the chat turned out to be over but nobody said why.
export const UNKNOWN_END = "unknown";

export function storedChatIds() {
  const ids = [];
  for (let i = 0; i < sessionStorage.length; i++) {
    const k = sessionStorage.key(i);
    if (k && k.startsWith(STORE_PREFIX)) ids.push(k.slice(STORE_PREFIX.length));
  }
  return ids;
}

// Forgets a chat this tab kept: its state here and its private key (resolves once the key is gone).
export function forgetChat(sessionId) {
  try { sessionStorage.removeItem(STORE_PREFIX + sessionId); } catch { /* nothing kept */ }
  return keystore.deleteKey(sessionId);
}

function ticketExpiry(ticket) {
  const parts = String(ticket || "").split(".");
  const at = parts.length === 5 ? Number(parts[3]) : NaN;
  return Number.isFinite(at) ? at : Infinity;
}

function num(v) {
  const n = typeof v === "string" ? Number(v) : (typeof v === "number" ? v : 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

// A sentence about how a chat ended, for the person on side `role`. `lost` and `requeued` are
// ChatEnded's: with reason "peer_lost", the side that was gone, and whether this seeker's request
// is open again at the front of the line.
export function describeEnd(role, endedBy, reason, { lost = "", requeued = false } = {}) {
  if (endedBy === role) return t("end.byYou");
  if (endedBy === "SEEKER" || endedBy === "LISTENER") return t(role === "SEEKER" ? "end.byListener" : "end.byOther");
  if (reason === "idle") return t("end.idle");
  if (reason === "expired") return t("end.expired");
  if (reason === "peer_lost") {
    if (role === "SEEKER" && requeued) return t("end.requeued");
    if (lost === role && role === "LISTENER") return t("end.lostListenerSelf");
    if (lost === role) return t("end.lostSelf");
    if (role === "LISTENER") return t("end.lostPerson");
    return t("end.lostListener");
  }
  // We learned only that it is over (e.g. it ended while this page was away), not who ended it.
  if (reason === UNKNOWN_END) return t("end.unknown");
  return t("end.warmline");
}

export class RelayChat {
  // chat: a ChatStarted (sessionId, role, relayUrl, relayTicket, topic, language).
  // onEvent(type, detail): message ({entry}: a line of either side, or a note from Warmline with
  // from "note"), update ({entry}: a line of this side changed state: sending, sent (stored by the
  // relay), delivered (the other side's receipt covers it), lost), peer, typing, read, status,
  // presence ({present}: the other side's connection is gone, or back), service ({degraded}: the
  // relay lost its database, or has it back), ended ({endedBy, reason, lost, requeued, text}),
  // replaced (another tab took over), refused ({text}: another device holds this side with other
  // keys), needticket, notice.
  static async open(chat, onEvent) {
    if (!swept) { swept = true; keystore.sweep(); }
    const c = new RelayChat(chat, onEvent);
    await c.load();
    c.claimTab();
    return c;
  }

  // Takes this chat's Web Lock from whichever tab holds it (a duplicated tab copies this one's
  // sessionStorage, counters included): the newest tab carries the chat, and the one it took the
  // lock from stops before it can seal another message. Without Web Locks the relay's checks
  // still refuse a second writer (docs/relay-protocol.md, section 3).
  claimTab() {
    if (!globalThis.navigator?.locks?.request) return;
    this.tabHeld = false;
    navigator.locks.request(`warmline-chat-${this.sessionId}`, { steal: true }, () => {
      this.tabHeld = true;
      if (!this.ws && !this.ended && !this.stopped && this.ticket) this.connect(true);
      return new Promise((release) => { this.releaseTab = release; });
    }).catch(() => {
      // stolen by a newer tab: it has the chat now
      this.releaseTab = null;
      if (this.ended || this.stopped) return;
      this.stop();
      this.emit("replaced");
    });
  }

  constructor(chat, onEvent) {
    this.sessionId = chat.sessionId;
    this.role = chat.role === "LISTENER" ? "LISTENER" : "SEEKER";
    this.topic = chat.topic || "";
    this.language = chat.language || "";
    this.relayUrl = chat.relayUrl || "";
    this.ticket = chat.relayTicket || "";
    this.onEvent = onEvent || (() => {});
    this.ws = null;
    this.connected = false;
    this.ended = false;
    this.stopped = false;
    this.keys = null;
    this.receiver = null;
    this.safety = null;
    this.pending = new Map();
    this.counter = 0;
    this.attempt = 0;
    this.timer = null;
    this.chain = Promise.resolve();
    this.held = new Map();
    this.early = [];
    this.receivedSent = 0;
    this.readSent = 0;
    this.maxCiphertext = 16384;
    this.waitingForTicket = false;
    this.inFlight = new Map();  // seq -> the socket it was last sent on
    this.peerAway = false;      // the relay said the other side's connection is gone
    this.degraded = false;      // the relay said it lost its database
    this.helloing = null;       // the hello in flight, if any
    this.storedThrough = 0;     // the relay has this side's messages up to here (ack, welcome)
    this.resyncs = 0;           // hellos again on this connection since the last ack
    this.tabHeld = true;        // this tab holds the chat's Web Lock (claimTab)
    this.releaseTab = null;
  }

  get storeKey() { return STORE_PREFIX + this.sessionId; }

  async load() {
    let s = null;
    try { s = JSON.parse(sessionStorage.getItem(this.storeKey) || "null"); } catch { s = null; }
    if (s && (s.v === 1 || s.v === 2) && s.pub) {
      this.s = s;
      if (s.pkcs8) {
        // kept by an earlier version in sessionStorage: moved into IndexedDB, out of reach
        this.privateKey = await e2e.importPrivateKey(e2e.fromBase64(s.pkcs8));
        await keystore.putKey(this.sessionId, this.privateKey).catch(() => {});
        delete s.pkcs8;
        s.v = 2;
        this.save();
      } else {
        this.privateKey = await keystore.getKey(this.sessionId);
      }
    }
    if (!this.privateKey) {
      // a new chat, or its key is gone from this browser (IndexedDB cleared): a fresh pair. The
      // relay ends a chat whose side comes back with another key (the keys were lost) unless the
      // device with the old one is still connected (then this tab is refused).
      const pair = await e2e.generateKeyPair();
      this.privateKey = pair.privateKey;
      await keystore.putKey(this.sessionId, pair.privateKey).catch(() => {});
      this.s = {
        ...(this.s || {}),
        v: 2, sessionId: this.sessionId, role: this.role, topic: this.topic, language: this.language,
        pub: e2e.toBase64(pair.publicRaw), peer: null,
      };
      for (const [k, v] of Object.entries({ nextSeq: 1, kept: [], peerReceived: 0, lostThrough: 0, outbox: [],
                                            delivered: 0, peerRead: 0, nextId: 1, transcript: [],
                                            startedAt: Date.now() })) {
        if (this.s[k] === undefined) this.s[k] = v;
      }
      this.save();
    }
    // A tab from before messages were kept until the other side's receipt: what it kept then
    // (unacknowledged ones) is what it has.
    if (!Array.isArray(this.s.kept)) this.s.kept = Array.isArray(this.s.unacked) ? this.s.unacked : [];
    delete this.s.unacked;
    this.s.peerReceived = num(this.s.peerReceived);
    this.s.lostThrough = num(this.s.lostThrough);
    this.topic = this.topic || this.s.topic;
    this.language = this.language || this.s.language;
    if (this.s.peer) await this.setPeer(e2e.fromBase64(this.s.peer), false);
  }

  save() {
    if (this.ended) return;
    if (this.write(this.s)) return;
    // Out of room (about 5 MB per tab, shared by every chat of the tab). The keys, the counters
    // and the sealed messages the other side has not confirmed must survive a reload, or a reload
    // would lose them or number a new message with a seq already used; older transcript lines need
    // not. Keep as many of the newest lines as fit.
    const all = this.s.transcript;
    const unsent = (e) => e.from === "me" && (e.state === "queued" || e.state === "sending");
    let n = all.length;
    while (n > 0) {
      n = Math.floor(n / 2);
      if (this.write({ ...this.s, transcript: all.filter((e, i) => i >= all.length - n || unsent(e)) })) break;
    }
    if (!this.storageWarned) {
      this.storageWarned = true;
      this.emit("notice", { text: t("chat.storageFull") });
    }
  }

  write(s) {
    try { sessionStorage.setItem(this.storeKey, JSON.stringify(s)); return true; } catch { return false; }
  }

  get transcript() { return this.s.transcript; }
  get peerRead() { return this.s.peerRead; }

  emit(type, detail = {}) {
    try { this.onEvent(type, detail); } catch { /* a broken handler must not break the chat */ }
  }

  // ---- connection -------------------------------------------------------------------------

  setTicket(ticket, relayUrl) {
    this.ticket = ticket || "";
    if (relayUrl) this.relayUrl = relayUrl;
    this.waitingForTicket = false;
    // A ticket straight from the matchmaker is tried as it is: this clock may be off.
    if (!this.ended && !this.stopped && !this.ws) { clearTimeout(this.timer); this.connect(true); }
  }

  connect(fresh = false) {
    if (this.ended || this.stopped || this.ws || !this.tabHeld) return;
    if (!this.ticket || !this.relayUrl || (!fresh && ticketExpiry(this.ticket) < Date.now() + 1000)) {
      this.askForTicket();
      return;
    }
    let ws;
    try {
      // the ticket goes in hello: a URL is written in the logs of every proxy on the way
      ws = new WebSocket(this.relayUrl);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.emit("status", { state: "connecting" });
    follow(ws, (s) => this.ws === s, {
      open: () => this.hello(ws),
      message: (data) => this.receive(data),
      close: (ev) => this.closed(ev),
    });
  }

  // The current socket closed. The relay refuses no ticket at the upgrade (a refused hello says
  // why), so a socket that never opened is the network or a full relay: tried again like a drop.
  closed(ev) {
    this.ws = null;
    this.connected = false;
    for (const p of this.pending.values()) p.reject(new Error("disconnected"));
    this.pending.clear();
    if (this.ended || this.stopped) return;
    if (ev.code === 4001) {
      this.stopped = true;
      this.emit("replaced");
      return;
    }
    this.emit("status", { state: "reconnecting" });
    // 1000 is how the relay closes after the chat ended; without the "ended" before it, let the
    // matchmaker say whether the chat is over (the ticket request does) instead of retrying.
    if (ev.code === 1000) { this.askForTicket(); return; }
    this.scheduleReconnect();
  }

  askForTicket() {
    if (this.ended || this.stopped) return;
    this.ticket = "";
    if (this.waitingForTicket) return;
    this.waitingForTicket = true;
    this.emit("needticket");
    // If nobody answers, ask again later.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.waitingForTicket && !this.ended && !this.stopped) { this.waitingForTicket = false; this.askForTicket(); }
    }, 15000);
  }

  // The network is gone: let the connection go (it can carry nothing now) and try again later, as
  // after any drop. reconnectNow() once it is back.
  drop() {
    if (this.ended || this.stopped || !this.ws) return;
    const ws = this.ws;
    try { ws.close(4000); } catch { /* ignore */ }
    this.closed({ code: 4000 });
  }

  // Drops the connection (it may be dead without knowing it, e.g. after the network was gone) and
  // opens a new one at once.
  reconnectNow() {
    if (this.ended || this.stopped) return;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this.connected = false;
      try { ws.close(4000); } catch { /* ignore */ }
      for (const p of this.pending.values()) p.reject(new Error("disconnected"));
      this.pending.clear();
    }
    this.attempt = 0;
    this.connect();
  }

  scheduleReconnect() {
    if (this.ended || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), backoffDelay(this.attempt++, RELAY_BACKOFF));
  }

  // Stops without ending the chat (page going away, tab replaced, signing out).
  stop() {
    this.stopped = true;
    if (this.releaseTab) { this.releaseTab(); this.releaseTab = null; }
    clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; try { ws.close(1000); } catch { /* ignore */ } }
    this.connected = false;
    for (const p of this.pending.values()) p.reject(new Error("stopped"));
    this.pending.clear();
  }

  request(body, ws = this.ws) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    const requestId = `c${++this.counter}`;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      try { ws.send(JSON.stringify({ requestId, ...body })); } catch (e) { this.pending.delete(requestId); reject(e); }
    });
  }

  async hello(ws) {
    let reply;
    // The ticket admits the first hello of a connection and is used up by it; a hello again on
    // the same connection ignores it.
    const helloing = this.request({
      hello: { publicKey: this.s.pub, receivedThrough: String(this.s.delivered), ticket: this.ticket },
    }, ws);
    this.helloing = helloing;
    try {
      reply = await helloing;
    } catch (err) {
      if (this.ws !== ws) return;
      // The relay says why when it has more to say than "it ended" (e.g. this side's keys were on
      // a device that is gone, which ended the chat just now).
      if (err.code === "NOT_FOUND") { this.finish(undefined, UNKNOWN_END, { text: err.message }); return; }
      if (err.code === "UNAUTHENTICATED") {
        // expired, or used up (the welcome that carried the next one never arrived): the
        // matchmaker gives a fresh one, and says whether the chat is over
        if (this.ws === ws) { this.ws = null; this.connected = false; }
        try { ws.close(4000); } catch { /* ignore */ }
        this.askForTicket();
        return;
      }
      if (err.code === "WRONG_STATE") {
        // Another device holds this side of the chat with other keys: this page cannot take part,
        // so it stops for good and says why (its message box must not look usable).
        this.stop();
        this.emit("refused", { text: err.message || t("chat.otherDevice") });
        return;
      }
      try { ws.close(4000); } catch { /* ignore */ }
      return;
    } finally {
      if (this.helloing === helloing) this.helloing = null;
    }
    if (this.ws !== ws || !reply.welcome) return;
    const w = reply.welcome;
    // this connection's ticket is used up; the next connection opens with this one
    if (typeof w.nextTicket === "string" && w.nextTicket) this.ticket = w.nextTicket;
    // A relay that says hello has its database; whether the other side is away comes next, as a
    // push right after the welcome (none: they are here).
    this.peerAway = false;
    if (this.degraded) { this.degraded = false; this.emit("service", { degraded: false }); }
    // After a send the relay refused (rate limit, too far ahead of the other side) the welcome
    // proves nothing: keep backing off until a message is stored again.
    if (!this.sendTrouble) this.attempt = 0;
    if (w.maxCiphertextBytes) this.maxCiphertext = w.maxCiphertextBytes;
    // Keys, sealing and sending all run on one chain so that nothing is numbered twice.
    this.chain = this.chain.then(() => this.welcomed(ws, w)).catch(() => {});
  }

  // The relay said where the chat stands (after a connect, or a hello again on this connection).
  async welcomed(ws, w) {
    if (this.ended || this.ws !== ws) return;
    const sentThrough = num(w.sentThrough);
    // The relay holds a seq this tab has no record of sealing (its storage was full, or a copy
    // of this tab sent it): never seal another text under that nonce.
    if (sentThrough >= this.s.nextSeq) { this.s.nextSeq = sentThrough + 1; this.save(); }
    // What the relay has needs no resend. This can be less than it acknowledged: Redis lost its
    // last writes (a crash, a failover to a lagging replica).
    this.storedThrough = sentThrough;
    this.markMine(sentThrough, "sent", (state) => state === "sending");
    this.peerReceivedThrough(num(w.peerReceivedThrough));
    if (typeof w.peerPublicKey === "string" && w.peerPublicKey) {
      let raw = null;
      try { raw = e2e.fromBase64(w.peerPublicKey); } catch { raw = null; }
      if (raw) await this.setPeer(raw, true);
    }
    if (this.ws !== ws || this.ended) return;
    // What the relay lacks and this tab no longer has (the other side's receipt had covered it,
    // or it was never kept here) is passed over first; the rest goes again after it, same seq,
    // same bytes (flush).
    const firstKept = this.s.kept.length ? this.s.kept[0].seq : this.s.nextSeq;
    if (firstKept > sentThrough + 1) this.skip(ws, sentThrough, firstKept - 1);
    this.inFlight.clear();
    this.connected = true;
    this.receivedSent = 0;
    // Without the other side's key, wait for its peerKey push: it may simply not have joined yet.
    this.emit("status", { state: this.keys ? "connected" : "waiting-peer" });
    await this.flush();
    this.sendReceipts();
  }

  // Tells the relay that this side's messages after `sentThrough` up to `through` are gone here
  // too; the relay takes through + 1 next and tells the other side (lost). Those the other side
  // had not confirmed never reached it: this side is told so, once.
  skip(ws, sentThrough, through) {
    this.storedThrough = through;  // the relay takes the skip before the resends after it
    this.request({ skip: { through: String(through) } }, ws).catch((err) => this.sendFailed(ws, err));
    const from = Math.max(sentThrough, this.s.peerReceived, this.s.lostThrough);
    if (through <= from) return;
    const unseen = through - from;
    this.s.lostThrough = through;
    this.markMine(through, "lost", (state, seq) => seq > from);
    this.addNote(t("chat.lostMine", { count: unseen }));
  }

  // The other side has this side's messages up to `through`: they need no resend any more.
  peerReceivedThrough(through) {
    // never past what this tab has numbered (a relay cannot have more, unless a copy of this tab
    // sent it, and then the welcome has moved nextSeq already)
    through = Math.min(through, this.s.nextSeq - 1);
    if (through <= this.s.peerReceived) return;
    this.s.peerReceived = through;
    this.s.kept = this.s.kept.filter((k) => k.seq > through);
    for (const seq of this.inFlight.keys()) if (seq <= through) this.inFlight.delete(seq);
    this.markMine(through, "delivered", (state) => state === "sending" || state === "sent");
    this.save();
  }

  // Sets the state of this side's lines up to seq `through` whose state passes `when`.
  markMine(through, state, when) {
    let changed = false;
    for (const entry of this.s.transcript) {
      if (entry.from !== "me" || !entry.seq || entry.seq > through || !when(entry.state, entry.seq)) continue;
      entry.state = state;
      changed = true;
      this.emit("update", { entry });
    }
    if (changed) this.save();
  }

  // A line from Warmline itself in the conversation (something could not be delivered).
  addNote(text) {
    const entry = { id: this.s.nextId++, from: "note", text, at: Date.now() };
    this.s.transcript.push(entry);
    this.save();
    this.emit("message", { entry });
  }

  receive(data) {
    if (typeof data !== "string") return;
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (!msg || typeof msg !== "object") return;
    if (msg.requestId) {
      const p = this.pending.get(msg.requestId);
      if (!p) return;
      this.pending.delete(msg.requestId);
      if (msg.error) {
        const err = new Error(msg.error.message || "error");
        err.code = msg.error.code;
        p.reject(err);
      } else {
        p.resolve(msg);
      }
      return;
    }
    if (msg.deliver) {
      const d = msg.deliver;
      this.chain = this.chain.then(() => this.onDeliver(d)).catch(() => {});
    } else if (msg.lost && typeof msg.lost === "object") {
      const l = msg.lost;
      this.chain = this.chain.then(() => this.onLost(l)).catch(() => {});
    } else if (msg.peerReceived && typeof msg.peerReceived === "object") {
      const t = num(msg.peerReceived.through);
      this.chain = this.chain.then(() => this.peerReceivedThrough(t)).catch(() => {});
    } else if (msg.peerKey && typeof msg.peerKey.publicKey === "string") {
      const raw = e2e.fromBase64(msg.peerKey.publicKey);
      this.chain = this.chain.then(async () => {
        await this.setPeer(raw, true);
        if (this.keys) { this.emit("status", { state: "connected" }); await this.flush(); }
      }).catch(() => {});
    } else if (msg.peerTyping) {
      this.emit("typing", { typing: !!msg.peerTyping.typing });
    } else if (msg.peerRead) {
      const t = num(msg.peerRead.through);
      if (t > this.s.peerRead) { this.s.peerRead = t; this.save(); this.emit("read", { through: t }); }
    } else if (msg.peerPresence) {
      const present = msg.peerPresence.present === true;
      this.peerAway = !present;
      this.emit("presence", { present });
    } else if (msg.service) {
      this.degraded = msg.service.degraded === true;
      this.emit("service", { degraded: this.degraded });
    } else if (msg.ended) {
      const e = msg.ended;
      this.finish(e.endedBy, e.reason || "", { lost: e.lost, requeued: e.requeued === true });
    }
  }

  // ---- keys ---------------------------------------------------------------------------------

  async setPeer(raw, persist) {
    if (this.keys) {
      if (e2e.toBase64(raw) !== this.s.peer) {
        this.emit("notice", { text: t("chat.keyChanged") });
      }
      return;
    }
    let keys;
    try {
      keys = await e2e.chatKeys(this.privateKey, raw, this.sessionId, this.role);
    } catch {
      this.emit("notice", { text: t("chat.keyInvalid") });
      return;
    }
    this.keys = keys;
    this.receiver = new e2e.Receiver(keys.receiveKey, this.sessionId, keys.receiveDir, this.s.delivered);
    if (persist) { this.s.peer = e2e.toBase64(raw); this.save(); }
    this.safety = await e2e.safetyCode(e2e.fromBase64(this.s.pub), raw);
    this.emit("peer", { safetyCode: this.safety });
    const early = this.early.splice(0);
    for (const d of early) {
      if (d.lost) await this.onLost(d.lost); else await this.onDeliver(d);
    }
  }

  // ---- receiving ----------------------------------------------------------------------------

  async onDeliver(d) {
    if (this.ended) return;
    if (!this.receiver) { if (this.early.length < MAX_HELD) this.early.push(d); return; }
    const seq = num(d.seq);
    if (d.from && d.from !== (this.role === "SEEKER" ? "LISTENER" : "SEEKER")) return;
    if (seq <= this.receiver.delivered) { this.sendReceipts(); return; }
    if (seq > this.receiver.delivered + 1) {
      if (this.held.size < MAX_HELD) this.held.set(seq, d);
      return;
    }
    let ct;
    try { ct = e2e.fromBase64(d.ciphertext || ""); } catch { return; }
    const r = await this.receiver.accept(seq, ct);
    if (r.status === "forged") {
      this.emit("notice", { text: t("chat.unverified") });
      return;
    }
    if (r.status !== "delivered") return;
    this.s.delivered = seq;
    const entry = { id: this.s.nextId++, from: "them", seq, text: r.text, at: num(d.sentUnixMs) || Date.now() };
    this.s.transcript.push(entry);
    this.save();
    this.emit("message", { entry });
    await this.afterDelivered();
  }

  // The other side's messages up to `through` are lost (the relay's MessagesLost): the next one is
  // through + 1. Unless this tab had them all, the conversation says so.
  async onLost(l) {
    if (this.ended) return;
    if (!this.receiver) { if (this.early.length < MAX_HELD) this.early.push({ lost: l }); return; }
    if (l.from !== (this.role === "SEEKER" ? "LISTENER" : "SEEKER")) return;
    const through = num(l.through);
    const missed = this.receiver.passOver(through);
    if (missed) {
      this.s.delivered = this.receiver.delivered;
      for (const seq of this.held.keys()) if (seq <= through) this.held.delete(seq);
      this.addNote(t("chat.lostTheirs", { count: missed }));
    }
    await this.afterDelivered();
  }

  // Opens what waited for the message just delivered or passed over, then says what this side has.
  async afterDelivered() {
    const seq = this.receiver.delivered + 1;
    const next = this.held.get(seq);
    this.held.delete(seq);
    if (next) { await this.onDeliver(next); return; }
    this.sendReceipts();
  }

  sendReceipts() {
    if (!this.connected || this.s.delivered <= this.receivedSent) return;
    const through = this.s.delivered;
    this.receivedSent = through;
    this.request({ received: { through: String(through) } }).catch(() => { this.receivedSent = 0; });
  }

  // The person has seen everything shown so far.
  markRead() {
    if (!this.connected || this.s.delivered <= this.readSent) return;
    const through = this.s.delivered;
    this.readSent = through;
    this.request({ read: { through: String(through) } }).catch(() => { this.readSent = 0; });
  }

  setTyping(typing) {
    if (!this.connected || !this.keys) return;
    this.request({ typing: { typing: !!typing } }).catch(() => {});
  }

  // ---- sending ------------------------------------------------------------------------------

  // Largest text (in UTF-8 bytes) that fits one message.
  get maxTextBytes() { return this.maxCiphertext - 16; }

  // Adds the text to the transcript at once and sends it as soon as it can (now, or once the
  // other side has joined, or after a reconnect). Returns the transcript entry.
  send(text) {
    if (this.ended) throw new Error("ended");
    if (new TextEncoder().encode(text).length > this.maxTextBytes) throw new RangeError("too long");
    const entry = { id: this.s.nextId++, from: "me", seq: 0, text, at: Date.now(), state: "queued" };
    this.s.transcript.push(entry);
    this.s.outbox.push(entry.id);
    this.save();
    this.emit("message", { entry });
    this.chain = this.chain.then(() => this.flush()).catch(() => {});
    return entry;
  }

  // Seals what waits in the outbox (once keys exist) and sends every kept message the relay has
  // not stored.
  async flush() {
    // sealed only on a welcomed connection: the welcome says which numbers the relay has taken
    // (another copy of this tab may have used some), so none is sealed twice
    if (this.ended || !this.keys || !this.connected) return;
    while (this.s.outbox.length) {
      const id = this.s.outbox[0];
      const entry = this.s.transcript.find((e) => e.id === id);
      if (!entry) { this.s.outbox.shift(); continue; }
      const seq = this.s.nextSeq;
      const ct = await e2e.seal(this.keys.sendKey, this.sessionId, this.keys.sendDir, seq, entry.text);
      // Number and store it before it goes out, so a reload resends the same bytes.
      this.s.nextSeq = seq + 1;
      entry.seq = seq;
      entry.state = "sending";
      this.s.kept.push({ seq, ct: e2e.toBase64(ct) });
      this.s.outbox.shift();
      this.save();
      this.emit("update", { entry });
    }
    if (!this.connected) return;
    const ws = this.ws;
    for (const u of this.s.kept) {
      if (u.seq <= this.storedThrough || this.inFlight.get(u.seq) === ws) continue;
      this.inFlight.set(u.seq, ws);
      this.request({ send: { seq: String(u.seq), ciphertext: u.ct } }, ws).then(
        (reply) => { this.sendTrouble = false; this.acknowledged(num(reply.ack && reply.ack.seq)); },
        (err) => this.sendFailed(ws, err));
    }
  }

  // The relay stored this side's message `seq` (and so everything before it). It stays kept until
  // the other side's receipt covers it.
  acknowledged(seq) {
    if (!seq) return;
    this.resyncs = 0;
    if (seq > this.storedThrough) this.storedThrough = seq;
    this.inFlight.delete(seq);
    this.markMine(seq, "sent", (state) => state === "sending");
  }

  // A send or skip on `ws` was refused.
  sendFailed(ws, err) {
    for (const [seq, w] of this.inFlight) if (w === ws) this.inFlight.delete(seq);
    if (!err || !err.code || this.ws !== ws) return;  // disconnected: the hello resends
    if (err.code === "NOT_FOUND") { this.finish(undefined, UNKNOWN_END); return; }
    // A hello is out on this connection (below): its welcome settles what to send, so the
    // refusals of what was sent before it say nothing new.
    if (err.code === "SEQ_CONFLICT" || err.code === "PERMISSION_DENIED") {
      // Another tab or device wrote this side under the same numbers, or took the side over:
      // this tab stops for good (its message box must not look usable); never resend.
      this.stop();
      this.emit("replaced");
      return;
    }
    if (!this.connected) return;
    if (err.code === "WRONG_STATE" && this.resyncs < MAX_RESYNCS) {
      // The relay's count differs from this tab's (Redis lost its last writes): ask where the
      // chat stands, on this connection, and go on from the welcome.
      this.resyncs += 1;
      this.connected = false;
      this.hello(ws);
      return;
    }
    this.sendTrouble = true;
    if (err.code === "MESSAGE_TOO_LARGE") {
      this.emit("notice", { text: t("chat.tooLong") });
    }
    // Anything else (rate limits, no database for a moment): start again, after a backoff, from
    // what the relay has stored.
    try { ws.close(4000); } catch { /* ignore */ }
  }

  // ---- ending -------------------------------------------------------------------------------

  // Asks the relay to end the chat; false when not connected (the owner can ask the matchmaker).
  async end() {
    if (this.ended) return true;
    if (!this.connected) return false;
    try {
      await this.request({ end: {} });
      return true;
    } catch (err) {
      if (this.ended) return true;  // the "ended" push came before the reply
      if (err.code === "NOT_FOUND") { this.finish(undefined, UNKNOWN_END); return true; }
      return false;
    }
  }

  // The matchmaker says the chat ended (its ChatEnded push). If a hello is in flight, the relay's
  // answer to it comes first: when it refuses because the chat just ended, it says how, in more
  // words than the matchmaker's fields give (e.g. the keys were on a device that is gone).
  endedElsewhere(endedBy, reason, extra = {}) {
    if (this.ended) return;
    const now = () => this.finish(endedBy, reason, extra);
    if (this.helloing) this.helloing.then(now, now); else now();
  }

  // The chat is over (from the relay, or the matchmaker said so): wipe what this tab kept.
  // extra: {lost, requeued} of ChatEnded, {text} to say instead of describeEnd()'s sentence.
  finish(endedBy, reason, extra = {}) {
    if (this.ended) return;
    this.ended = true;
    this.endedBy = endedBy || "";
    this.endReason = reason || "";
    this.endLost = extra.lost || "";
    this.requeued = extra.requeued === true;
    this.peerAway = false;
    clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; try { ws.close(1000); } catch { /* ignore */ } }
    this.connected = false;
    try { sessionStorage.removeItem(this.storeKey); } catch { /* nothing stored */ }
    // Forget the keys (a key stolen later must not open this chat); the transcript stays in memory
    // for the owner (a seeker may still report it) until the owner lets it go.
    keystore.deleteKey(this.sessionId);
    if (this.releaseTab) { this.releaseTab(); this.releaseTab = null; }
    this.s.kept = [];
    this.privateKey = null;
    this.keys = null;
    this.receiver = null;
    this.held.clear();
    this.early = [];
    for (const p of this.pending.values()) p.reject(new Error("ended"));
    this.pending.clear();
    const how = { lost: this.endLost, requeued: this.requeued };
    this.emit("ended", { endedBy: this.endedBy, reason: this.endReason, ...how,
                         text: extra.text || describeEnd(this.role, this.endedBy, this.endReason, how) });
  }
}

// A JSON WebSocket client for the matchmaker (docs/protocol.md): one connection, a fresh requestId
// for every request, one promise per request settled by the reply with the same requestId,
// handlers for pushes, and reconnecting with backoff. Signing in is the caller's `signIn`
// callback, run on every (re)connection before anything else is sent. Close codes 4001 (another
// tab took over) and 4003 (account revoked) are final, and so is a refused sign-in. The seeker,
// listener and supervisor pages all use it. Nothing here logs frames: they hold tokens.

import { follow, backoffDelay } from "./reconnect.js";
import { t } from "./i18n.js";

const FINAL_CLOSE_CODES = new Set([4001, 4003]);
const REQUEST_TIMEOUT_MS = 20000;
const TRANSIENT = new Set(["UNAVAILABLE", "INTERNAL", "RATE_LIMITED", "TIMEOUT", "DISCONNECTED"]);

export class ServiceError extends Error {
  constructor(code, message) {
    super(message || t("error.generic"));
    this.code = code || "UNKNOWN";
  }
}

function disconnected() {
  return new ServiceError("DISCONNECTED", t("mm.lost"));
}

export class Matchmaker {
  // url: ws(s)://…/v1/ws. signIn(mm) -> Promise, run after each open; it should send the sign-in
  // with mm.request(…, {alone: true}). onPush(msg). onStatus({state, …}), state one of:
  // "connecting"; "ready" (signed in); "reconnecting" {code (of the close, if it closed), error (the
  // sign-in's, if it could not be checked), delayMs (until the next try)}; "refused" {error} and
  // "closed" {code, reason}, both final. backoff: {firstMs, maxMs} (reconnect.js).
  constructor(url, { signIn, onPush, onStatus, backoff } = {}) {
    this.url = url;
    this.signIn = signIn;
    this.onPush = onPush || (() => {});
    this.onStatus = onStatus || (() => {});
    this.backoff = backoff;
    this.ws = null;
    this.counter = 0;
    this.prefix = Math.random().toString(36).slice(2, 8);
    this.pending = new Map();
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.ready = false;
    this.readyWaiters = [];
  }

  // Opens the connection (and keeps it open) until close().
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.letGo(1000);
    this.failAll(new ServiceError("CLOSED", t("mm.closed")));
  }

  // Drops this connection on purpose and opens a new one at once (e.g. for a fresh relay ticket).
  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.letGo(1000);
    this.failAll(disconnected());
    this.attempt = 0;
    this.open();
  }

  // Gives up on a connection that seems dead though it never closed (e.g. a feed that went
  // silent): drops it and reconnects after a backoff, as after any drop.
  drop() {
    if (this.stopped || !this.ws) return;
    this.letGo(4000);
    this.failAll(disconnected());
    this.scheduleReconnect({});
  }

  // Forgets the current socket without waiting for its close event (its handlers ignore it then).
  letGo(code) {
    this.ready = false;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try { ws.close(code); } catch { /* already closed */ }
    }
  }

  // Resolves once signed in on the current connection (immediately if already).
  whenReady() {
    if (this.ready) return Promise.resolve();
    if (this.stopped) return Promise.reject(new ServiceError("CLOSED", t("mm.stopped")));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  open() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.onStatus({ state: "connecting" });
    follow(ws, (s) => this.ws === s, {
      open: () => this.afterOpen(ws),
      message: (data) => this.receive(data),
      close: (ev) => this.closed(ev),
    });
  }

  // Runs the caller's sign-in on the socket that just opened; then the connection is ready.
  async afterOpen(ws) {
    try {
      await this.signIn(this);
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.ready = true;
      this.onStatus({ state: "ready" });
      const waiters = this.readyWaiters.splice(0);
      for (const w of waiters) w.resolve();
    } catch (err) {
      if (this.ws !== ws) return;
      // A sign-in that could not be checked right now (a database hiccup, a lost or slow
      // connection) is tried again like any drop; only a refusal (bad token, …) is final.
      if (TRANSIENT.has(err.code)) {
        this.letGo(4000);
        this.failAll(disconnected());
        this.scheduleReconnect({ error: err });
        return;
      }
      this.stopped = true;
      this.letGo(1000);
      const waiters = this.readyWaiters.splice(0);
      for (const w of waiters) w.reject(err);
      this.onStatus({ state: "refused", error: err });
    }
  }

  // The current socket closed.
  closed(ev) {
    this.ws = null;
    this.ready = false;
    this.failAll(disconnected());
    if (FINAL_CLOSE_CODES.has(ev.code)) {
      this.stopped = true;
      const waiters = this.readyWaiters.splice(0);
      for (const w of waiters) w.reject(new ServiceError("CLOSED", t("mm.closed")));
      this.onStatus({ state: "closed", code: ev.code, reason: ev.reason });
      return;
    }
    this.scheduleReconnect({ code: ev.code });
  }

  scheduleReconnect(detail = {}) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const delayMs = backoffDelay(this.attempt++, this.backoff);
    this.onStatus({ state: "reconnecting", ...detail, delayMs });
    this.timer = setTimeout(() => { if (!this.stopped) this.open(); }, delayMs);
  }

  failAll(err) {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
  }

  // Sends one request; resolves with the server message that answers it, rejects with a
  // ServiceError for an error reply. opts.alone: the only request in flight (sign-in), so an
  // error that comes back without a requestId (MALFORMED_FRAME) belongs to it.
  request(body, opts = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ServiceError("DISCONNECTED", t("mm.notNow")));
    }
    const requestId = `${this.prefix}-${++this.counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ServiceError("TIMEOUT", t("error.timeout")));
      }, opts.timeoutMs || REQUEST_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer, alone: !!opts.alone });
      try {
        ws.send(JSON.stringify({ requestId, ...body }));
      } catch {
        clearTimeout(timer);
        this.pending.delete(requestId);
        reject(new ServiceError("DISCONNECTED", t("mm.notNow")));
      }
    });
  }

  // request() with a few polite retries for RATE_LIMITED and UNAVAILABLE (new id each time).
  async call(body, opts = {}) {
    let wait = 300;
    for (let i = 0; ; i++) {
      try {
        if (!opts.alone) await this.whenReady();
        return await this.request(body, opts);
      } catch (err) {
        const retry = (err.code === "RATE_LIMITED" || err.code === "UNAVAILABLE" || err.code === "INTERNAL") && i < 4;
        if (!retry) throw err;
        await new Promise((r) => setTimeout(r, wait));
        wait *= 2;
      }
    }
  }

  receive(data) {
    if (typeof data !== "string") return;  // we speak JSON only
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) return;
    const id = typeof msg.requestId === "string" ? msg.requestId : "";
    if (id) {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new ServiceError(msg.error.code, msg.error.message));
      else p.resolve(msg);
      return;
    }
    if (msg.error) {
      // An unparseable request is answered without its id; pin it on a lone request in flight.
      const alone = [...this.pending.entries()].filter(([, p]) => p.alone);
      const target = alone.length === 1 ? alone[0] : (this.pending.size === 1 ? [...this.pending.entries()][0] : null);
      if (target) {
        this.pending.delete(target[0]);
        clearTimeout(target[1].timer);
        target[1].reject(new ServiceError(msg.error.code, msg.error.message));
      }
      return;
    }
    try {
      Promise.resolve(this.onPush(msg)).catch(() => {});
    } catch {
      // a bad push must never take the page down
    }
  }
}

// proto3 JSON: 64-bit numbers come as strings, defaults are omitted.
export function num(v) {
  const n = typeof v === "string" ? Number(v) : (typeof v === "number" ? v : 0);
  return Number.isFinite(n) ? n : 0;
}

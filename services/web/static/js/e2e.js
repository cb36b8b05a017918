// The warmline-e2e-v1 suite (docs/e2e.md) with WebCrypto alone: X25519 key agreement, HKDF-SHA256
// direction keys, AES-256-GCM with the suite's nonce and associated-data layouts, the in-order
// receiver of section 4 (with its pass-over of messages the relay lost) and the safety code of
// section 5. Nothing here logs or keeps anything; callers own the keys and must never print them.

export const SUITE = "warmline-e2e-v1";
export const SEEKER_TO_LISTENER = 0x01;
export const LISTENER_TO_SEEKER = 0x02;
const LABEL_S2L = "warmline/v1/seeker->listener";
const LABEL_L2S = "warmline/v1/listener->seeker";
const PKCS8_X25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function be64(seq) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq), false);
  return b;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// Standard base64 (what proto3 JSON uses for bytes); decoding also accepts base64url.
export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text) {
  const std = String(text).replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// True when this browser can do X25519 in WebCrypto. Without it there is no private chat.
export async function x25519Supported() {
  try {
    if (!globalThis.crypto || !crypto.subtle) return false;
    await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    return true;
  } catch {
    return false;
  }
}

// 3.1: a fresh key pair for one chat. The private key is not extractable: kept across a reload as
// a CryptoKey in IndexedDB (keystore.js), its bytes never reach a script.
export async function generateKeyPair() {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicRaw };
}

export function pkcs8FromRawPrivate(raw) {
  if (raw.length !== 32) throw new Error("an X25519 private key is 32 bytes");
  return concat(PKCS8_X25519_PREFIX, raw);
}

export async function importPrivateKey(pkcs8, extractable = false) {
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, extractable, ["deriveBits"]);
}

// 3.2: the shared secret. WebCrypto refuses an all-zero result; the check below is a second guard.
export async function sharedSecret(privateKey, peerPublicRaw) {
  if (!(peerPublicRaw instanceof Uint8Array) || peerPublicRaw.length !== 32) {
    throw new Error("the other side's key is not 32 bytes");
  }
  const peer = await crypto.subtle.importKey("raw", peerPublicRaw, { name: "X25519" }, true, []);
  const shared = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "X25519", public: peer }, privateKey, 256));
  if (shared.every((b) => b === 0)) throw new Error("the other side's key is not valid");
  return shared;
}

// 3.3: the two direction keys as raw bytes (salt = session id, info = the direction label).
export async function directionKeyBytes(shared, sessionId) {
  if (!sessionId) throw new Error("the session id must not be empty");
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const bits = async (label) => new Uint8Array(await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: te.encode(sessionId), info: te.encode(label) }, ikm, 256));
  return { seekerToListener: await bits(LABEL_S2L), listenerToSeeker: await bits(LABEL_L2S) };
}

export async function importAesKey(raw) {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

// Everything one side needs for one chat: the key it seals with and the key it opens with.
// role is "SEEKER" or "LISTENER".
export async function chatKeys(privateKey, peerPublicRaw, sessionId, role) {
  const shared = await sharedSecret(privateKey, peerPublicRaw);
  const raw = await directionKeyBytes(shared, sessionId);
  shared.fill(0);
  const s2l = await importAesKey(raw.seekerToListener);
  const l2s = await importAesKey(raw.listenerToSeeker);
  raw.seekerToListener.fill(0);
  raw.listenerToSeeker.fill(0);
  const seeker = role === "SEEKER";
  return {
    sendKey: seeker ? s2l : l2s,
    sendDir: seeker ? SEEKER_TO_LISTENER : LISTENER_TO_SEEKER,
    receiveKey: seeker ? l2s : s2l,
    receiveDir: seeker ? LISTENER_TO_SEEKER : SEEKER_TO_LISTENER,
  };
}

// 3.5
export function nonce(dir, seq) {
  return concat(new Uint8Array([dir, 0, 0, 0]), be64(seq));
}

// 3.6
export function associatedData(sessionId, dir, seq) {
  return concat(te.encode("warmline/v1"), new Uint8Array([0]), te.encode(sessionId),
                new Uint8Array([0, dir]), be64(seq));
}

function gcmParams(sessionId, dir, seq) {
  return { name: "AES-GCM", iv: nonce(dir, seq), additionalData: associatedData(sessionId, dir, seq),
           tagLength: 128 };
}

// 3.7: ciphertext with the 16-byte tag appended.
export async function seal(key, sessionId, dir, seq, text) {
  return new Uint8Array(await crypto.subtle.encrypt(gcmParams(sessionId, dir, seq), key, te.encode(text)));
}

// Returns the text, or null when the message does not authenticate (or is not UTF-8).
export async function open(key, sessionId, dir, seq, ciphertext) {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < 16) return null;
  try {
    return td.decode(await crypto.subtle.decrypt(gcmParams(sessionId, dir, seq), key, ciphertext));
  } catch {
    return null;
  }
}

// Section 4: the receiver of one direction. accept() must be awaited one message at a time.
export class Receiver {
  constructor(key, sessionId, dir, delivered = 0) {
    this.key = key;
    this.sessionId = sessionId;
    this.dir = dir;
    this.delivered = delivered;
  }

  // -> {status: "duplicate" | "out_of_order" | "forged" | "delivered", text?}
  async accept(seq, ciphertext) {
    if (!Number.isSafeInteger(seq) || seq <= this.delivered) return { status: "duplicate" };
    if (seq > this.delivered + 1) return { status: "out_of_order" };
    const text = await open(this.key, this.sessionId, this.dir, seq, ciphertext);
    if (text === null) return { status: "forged" };
    this.delivered = seq;
    return { status: "delivered", text };
  }

  // The relay says the messages up to `through` were lost (MessagesLost): expect through + 1
  // next. Returns how many of them this side did not have (0 if it had them all), for the caller
  // to show: the relay could always withhold messages; this makes a gap visible (common/e2e.cpp,
  // receiver::pass_over).
  passOver(through) {
    if (!Number.isSafeInteger(through) || through <= this.delivered) return 0;
    const missed = through - this.delivered;
    this.delivered = through;
    return missed;
  }
}

// Section 5: six groups of five digits from both public keys, the same on both screens.
export async function safetyCode(a, b) {
  let c = 0;
  for (let i = 0; i < 32 && c === 0; i++) c = a[i] - b[i];
  const [lo, hi] = c <= 0 ? [a, b] : [b, a];
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(te.encode("warmline/v1/safety"), lo, hi)));
  const groups = [];
  for (let g = 0; g < 6; g++) {
    let n = 0;
    for (let i = 0; i < 5; i++) n = n * 256 + d[5 * g + i];
    groups.push(String(n % 100000).padStart(5, "0"));
  }
  return groups.join(" ");
}

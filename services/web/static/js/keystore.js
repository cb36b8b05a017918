// Where a chat's private key lives between page loads: IndexedDB, as a non-extractable CryptoKey
// (WebCrypto keeps its bytes; no script, ours included, can read them), keyed by the chat's
// session id. Unlike sessionStorage, IndexedDB outlives the tab and is shared by the origin's
// tabs, so every key is deleted when its chat ends, and keys older than a day (the longest a
// chat's records live) are swept at every page load. Nothing here logs.

const DB = "warmline";
const STORE = "chat-keys";
export const MAX_AGE_MS = 24 * 3600 * 1000;

let opening = null;

function database() {
  if (!globalThis.indexedDB) return Promise.reject(new Error("no IndexedDB"));
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    opening.catch(() => { opening = null; });
  }
  return opening;
}

async function run(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const r = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(r?.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

// Keeps `privateKey` (a CryptoKey) for the chat `id`.
export function putKey(id, privateKey) {
  return run("readwrite", (s) => s.put({ privateKey, at: Date.now() }, id));
}

// The chat's private key, or null when there is none (or IndexedDB cannot be used).
export async function getKey(id) {
  try {
    const v = await run("readonly", (s) => s.get(id));
    return v && v.privateKey ? v.privateKey : null;
  } catch {
    return null;
  }
}

export async function deleteKey(id) {
  try { await run("readwrite", (s) => s.delete(id)); } catch { /* nothing kept */ }
}

// Deletes the keys kept longer than `maxAgeMs` (chats whose tab was closed and never came back).
export async function sweep(maxAgeMs = MAX_AGE_MS) {
  try {
    const cutoff = Date.now() - maxAgeMs;
    await run("readwrite", (s) => {
      const r = s.openCursor();
      r.onsuccess = () => {
        const c = r.result;
        if (!c) return;
        if (!(c.value && c.value.at > cutoff)) c.delete();
        c.continue();
      };
      return null;
    });
  } catch { /* nothing kept */ }
}

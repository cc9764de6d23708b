// ranklet's local state in IndexedDB (used by the worker): the visitor's bounded event history
// and the cache of item text vectors keyed by model + text. Nothing here leaves the device.
//
// Safe with several tabs: every write is one IndexedDB transaction, events get
// auto-increment keys, and trimming the history to its bound runs in the same transaction as
// the append. A full disk (QuotaExceededError) never breaks the page: the vector cache is then
// skipped, and a history write makes room by dropping the cache and then the oldest events.

import { EVENT_TYPES } from './contract.js';

export { EVENT_TYPES };

const DB_NAME = 'ranklet';
const DB_VERSION = 1;

let dbPromise = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

export function openDb() {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('vectors')) db.createObjectStore('vectors');
      if (!db.objectStoreNames.contains('events')) db.createObjectStore('events', { autoIncrement: true });
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab deleting the database (forget) must not be blocked by this one.
      db.onversionchange = () => { db.close(); dbPromise = null; };
      resolve(db);
    };
    req.onerror = () => { dbPromise = null; reject(req.error); };
    req.onblocked = () => reject(new Error('local storage is blocked by another tab upgrading it'));
  });
  return dbPromise;
}

/** Hex sha256 of a string. */
export async function sha256(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The stored values of the vector store for `keys` (undefined where none), as stored. */
export async function getStored(keys) {
  const db = await openDb();
  const tx = db.transaction('vectors', 'readonly');
  const store = tx.objectStore('vectors');
  return Promise.all(keys.map((k) => request(store.get(k))));
}

/** Cached vectors for `keys` (Float32Array or undefined each). */
export async function getVectors(keys) {
  return (await getStored(keys)).map((v) => (v instanceof Float32Array ? v : undefined));
}

/** Stores vectors; resolves to null, or to the reason they could not be stored (disk full). */
export async function putVectors(entries) {
  try {
    const db = await openDb();
    const tx = db.transaction('vectors', 'readwrite');
    const store = tx.objectStore('vectors');
    for (const [k, v] of entries) store.put(v, k);
    await done(tx);
    return null;
  } catch (err) {
    return `the vector cache could not be written (${err?.name ?? 'error'}: ${err?.message ?? err}); vectors will be computed again next time`;
  }
}

/** Checks one event and returns its stored form; throws with the reason. */
export function checkEvent(event) {
  if (!event || typeof event !== 'object') throw new Error('record: an event is an object like {event: "click", item: "sku-1"}');
  const type = event.event ?? 'click';
  if (!EVENT_TYPES.includes(type)) throw new Error(`record: unknown event type ${JSON.stringify(type)} (one of ${EVENT_TYPES.join(', ')})`);
  const out = { event: type, ts: Number.isFinite(event.ts) ? event.ts : Date.now() };
  if (type === 'search') {
    if (typeof event.query !== 'string' || !event.query.trim()) throw new Error('record: a search event needs a non-empty "query"');
    out.query = event.query.slice(0, 1000);
  } else {
    if (event.item === undefined || event.item === null || String(event.item) === '') throw new Error(`record: a ${type} event needs an "item" id`);
    out.item = String(event.item);
  }
  if (Number.isFinite(event.value)) out.value = event.value;
  if (Number.isFinite(event.dwell_ms)) out.dwell_ms = event.dwell_ms;
  return out;
}

// Deletes the oldest `n` events of the events store, inside the caller's transaction.
function deleteOldest(store, n) {
  let left = n;
  const cursorReq = store.openCursor();
  cursorReq.onsuccess = () => {
    const cursor = cursorReq.result;
    if (cursor && left > 0) { cursor.delete(); left -= 1; cursor.continue(); }
  };
}

async function appendOnce(event, limit) {
  const db = await openDb();
  const tx = db.transaction('events', 'readwrite');
  const store = tx.objectStore('events');
  store.add(event);
  const count = await request(store.count());
  if (count > limit) deleteOldest(store, count - limit);
  await done(tx);
  return Math.min(count, limit);
}

const isQuota = (err) => err?.name === 'QuotaExceededError' || /quota/i.test(String(err?.message ?? ''));

async function clearStore(name) {
  const db = await openDb();
  const tx = db.transaction(name, 'readwrite');
  tx.objectStore(name).clear();
  await done(tx);
}

// Deletes the oldest `n` events in a transaction of its own.
async function dropOldest(n) {
  const db = await openDb();
  const tx = db.transaction('events', 'readwrite');
  deleteOldest(tx.objectStore('events'), n);
  await done(tx);
}

/**
 * Appends an event and trims the history to its newest `limit` events, in one transaction.
 * When the disk is full, the newest events matter most: the vector cache (recomputable) is
 * emptied first, then the oldest quarter of the history, until the event fits.
 */
export async function appendEvent(event, limit) {
  let lastError;
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      return await appendOnce(event, limit);
    } catch (err) {
      lastError = err;
      if (!isQuota(err)) break;
      try {
        if (attempt === 0) await clearStore('vectors');
        else {
          const count = await request((await openDb()).transaction('events', 'readonly').objectStore('events').count());
          if (count === 0) break;
          await dropOldest(Math.max(1, Math.ceil(count / 4)));
        }
      } catch { break; }
    }
  }
  throw new Error(`record: the event could not be stored (${lastError?.name ?? 'error'}: ${lastError?.message ?? lastError})`);
}

// Events that storage could not take (disk full even after making room): kept in memory for
// this visit, after the stored ones, so the shelf still follows the newest events.
const unsaved = [];

/**
 * Records an event without ever rejecting on a full disk: resolves to {stored, saved: true},
 * or to {saved: false, note} when the event could only be kept in memory for this visit.
 * A malformed event still throws (checkEvent).
 */
export async function recordEvent(event, limit) {
  const checked = checkEvent(event);
  try {
    return { stored: await appendEvent(checked, limit), saved: true };
  } catch (err) {
    unsaved.push(checked);
    if (unsaved.length > limit) unsaved.shift();
    return { stored: null, saved: false, note: `${err.message}; kept for this visit only` };
  }
}

/** The history, oldest first: stored events and those kept in memory only, by time. */
export async function readHistory() {
  let stored = [];
  try {
    stored = await readEvents();
  } catch (err) {
    if (!unsaved.length) throw err;
  }
  return unsaved.length ? [...stored, ...unsaved].sort((a, b) => a.ts - b.ts) : stored;
}

/** The stored events, oldest first. */
export async function readEvents() {
  const db = await openDb();
  return request(db.transaction('events', 'readonly').objectStore('events').getAll());
}

/** Deletes everything ranklet stored on this device. */
export async function forgetAll() {
  unsaved.length = 0;
  const db = await dbPromise?.catch(() => null);
  db?.close();
  dbPromise = null;
  await new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve(); // other tabs close on versionchange; deletion completes then
  });
}

// ranklet in the browser: a small ES module over the wasm package. Every model runs in its own
// Web Worker (www/worker.js); this module only sends messages and awaits answers.
//
//   import { RankletEncoder } from './ranklet.js';
//   const enc = await RankletEncoder.load('../models/teacher/', { backend: 'auto' });
//   const vectors = await enc.embed(['USB-C charger 65W']);   // [Float32Array(384)]
//   enc.backend;  // "webgpu" | "cpu", and enc.backendReason says why

import { encodeHistory } from './history.js';

class WorkerClient {
  constructor() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = (e) => {
      const { id, ok, result, error, progress } = e.data;
      const p = this.pending.get(id);
      if (!p) return;
      if (progress !== undefined) {
        try { p.onProgress?.(progress); } catch (err) { console.error('onProgress threw', err); }
        return;
      }
      this.pending.delete(id);
      ok ? p.resolve(result) : p.reject(new Error(error));
    };
    this.worker.onerror = (e) => {
      const err = new Error(`ranklet worker failed: ${e.message || 'could not start (is www/pkg built?)'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }
  call(op, args, onProgress, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }
  terminate() {
    this.worker.terminate();
  }
}

/** This device's class for the scene context: desktop, tablet or mobile (by pointer and width). */
export function deviceClass() {
  if (typeof matchMedia !== 'function') return 'desktop';
  if (!matchMedia('(pointer: coarse)').matches) return 'desktop';
  return Math.min(screen?.width ?? 0, screen?.height ?? 0) >= 600 ? 'tablet' : 'mobile';
}

export class RankletEncoder {
  constructor(client, info) {
    this.client = client;
    this.handle = info.handle;
    /** "webgpu" or "cpu": the backend that runs. */
    this.backend = info.backend;
    /** Why that backend runs. */
    this.backendReason = info.backendReason;
    /** Width of the vectors. */
    this.dim = info.dim;
    this.name = info.name;
  }

  /** Loads a bundle folder (manifest.json + the files it names) from this page's origin. */
  static async load(model, { backend = 'auto' } = {}) {
    const url = new URL(model, location.href).href;
    return RankletEncoder.#start('load', { url, backend });
  }

  static async #start(op, args) {
    const client = new WorkerClient();
    try {
      return new RankletEncoder(client, await client.call(op, args));
    } catch (err) {
      client.terminate();
      throw err;
    }
  }

  /** Embeds texts in one batch; returns one Float32Array per text. */
  async embed(texts) {
    const flat = await this.client.call('embed', { handle: this.handle, texts: Array.from(texts, String) });
    return Array.from({ length: texts.length }, (_, i) => flat.subarray(i * this.dim, (i + 1) * this.dim));
  }

  /** Word-piece ids of one text. */
  async tokenize(text) {
    return this.client.call('tokenize', { handle: this.handle, text: String(text) });
  }

  /** The encoder texts of a catalogue's items (JSON array, JSONL or items), as index() embeds them. */
  async catalogTexts(catalog) {
    return this.client.call('catalogTexts', { catalog });
  }

  /** The benchmark's synthetic product titles (same as `ranklet bench embed`). */
  async productTitles(n, seed = 42) {
    return this.client.call('titles', { n, seed });
  }

  /** Frees the model and stops its worker. */
  close() {
    this.client.terminate();
  }
}

/**
 * A shop's recommender: the bundle's encoder embeds the catalog, its recommender ranks it after
 * a history — all in a Web Worker.
 *
 *   const r = await Ranklet.load({ model: '/models/student/', backend: 'auto' });
 *   await r.index(catalog);                      // [{id, title, category?, brand?, text?}]
 *   await r.recommend({ k: 8, history: ['item-3', 'item-9'] });  // [{id, score, because: [ids]}]
 */
export class Ranklet {
  constructor(client, info) {
    this.client = client;
    this.handle = info.handle;
    this.backend = info.backend;
    this.backendReason = info.backendReason;
    /** "inductive" | "transductive" | "id". */
    this.mode = info.mode;
    this.maxLen = info.maxLen;
    /** Whether the model reads behaviour types (then dislikes stay in its sequence). */
    this.readsEventTypes = info.readsEventTypes;
    /** The facets (genres, categories) of the model's persona input; empty: it has none. */
    this.personaFacets = info.personaFacets ?? [];
    /** Item id → catalogue row of the indexed catalogue, to encode histories on this side. */
    this.rowOf = null;
    /**
     * The indexed catalogue's items this model never trained on (ids outside the bundle's
     * items, or held out of its training), in catalogue order: pass them as `candidates` for a
     * "new arrivals" shelf. Empty before `index()`, for a model with ID rows, and with a
     * partitioned index.
     */
    this.newIds = [];
    /** The bundle's name and the bytes of the files downloaded for it. */
    this.name = info.name;
    this.bytes = info.bytes;
    /** Width of the encoder's text vectors. */
    this.dim = info.dim;
    /** Items of the precomputed index served with the bundle (0: none, or not usable). */
    this.indexItems = info.indexItems ?? 0;
    /**
     * A partitioned index ({shards, nprobe, decoys, popular: the popular shard's items}), or
     * null: then recommend() fetches nprobe + decoys shards each time and needs no catalogue,
     * and each result carries `item`, its catalogue object.
     */
    this.partitioned = info.partitioned ?? null;
    /** Why a backend or the index was not used, if one was not. */
    this.note = info.note;
  }

  /**
   * `historySelect`: which events of a history longer than the model's window it reads —
   * "relevant" (the newest `recent` (20) plus the older events nearest to them; the default)
   * or "last". `index`: the folder of the precomputed item index (`ranklet index`; default: the
   * bundle's `index/`, used when present and built with this bundle). With an index, `index()`
   * embeds only the catalogue items the index lacks or holds another text for. A partitioned
   * index (`ranklet index --partitions`) needs no catalogue at all; `nprobe` and `decoys`
   * override the cells it ranks and the decoy shards it fetches per recommendation.
   */
  static async load({ model, backend = 'auto', historySelect = 'relevant', recent = 20, index, nprobe, decoys } = {}) {
    const url = new URL(model, location.href).href;
    const indexUrl = index === undefined ? undefined : new URL(index, location.href).href;
    const client = new WorkerClient();
    try {
      return new Ranklet(client, await client.call('loadShop', { url, backend, historySelect, recent, index: indexUrl, nprobe, decoys }));
    } catch (err) {
      client.terminate();
      throw err;
    }
  }

  /**
   * Embeds the catalog's item texts, reusing vectors cached in IndexedDB for this model and
   * text, and the rows of the bundle's item index for the items it holds with the same text;
   * resolves to {items, embedded, reused, fromIndex, cacheNote, newItems} (newItems: how many
   * of its items the model never trained on, listed in `newIds`). `onProgress({embedded,
   * toEmbed, items})` is called after each embedded batch.
   */
  async index(catalog, { batch = 32, onProgress } = {}) {
    this.rowOf = null;
    this.newIds = [];
    const { ids, newIds, ...result } = await this.client.call('index', { handle: this.handle, catalog, batch }, onProgress);
    // A partitioned index keeps rows in the worker (shards come per recommendation).
    this.rowOf = ids ? new Map(ids.map((id, r) => [id, r])) : null;
    this.newIds = newIds;
    return { ...result, newItems: newIds.length };
  }

  /**
   * Uses item vectors embedded elsewhere with this bundle's encoder (e.g. `ranklet embed`):
   * `ids` and a Float32Array of ids.length × dim values, row-major (inductive models only).
   */
  async indexVectors(ids, vectors) {
    this.rowOf = null;
    const names = Array.from(ids, String);
    this.newIds = [];
    const { newIds, ...result } = await this.client.call('indexVectors', { handle: this.handle, ids: names, vectors: Float32Array.from(vectors) });
    this.rowOf = new Map(names.map((id, r) => [id, r]));
    this.newIds = newIds;
    return { ...result, newItems: newIds.length };
  }

  /** Memory in use by the worker: {wasm_bytes, js_heap_bytes}. */
  async memory() {
    return this.client.call('memory', {});
  }

  /**
   * Appends an event ({event, item | query, ts?, value?, dwell_ms?}) to the local history;
   * resolves to {stored, saved}. On a full disk the oldest events make room; if even that
   * fails the event is kept in memory for this visit ({saved: false, note}). A malformed
   * event rejects with the reason.
   */
  async record(event, { limit = 1000 } = {}) {
    return this.client.call('record', { event, limit });
  }

  /** The stored events, oldest first. */
  async history() {
    return this.client.call('history', {});
  }

  /** Wipes everything ranklet stored on this device (history and cached vectors). */
  async forget() {
    return this.client.call('forget', {});
  }

  /** Counters for tests and the bench page: embedding calls made by this instance. */
  async stats() {
    return this.client.call('stats', { handle: this.handle });
  }

  /**
   * The k best items after `history` (item ids, {query: "search text"}, or typed events
   * {item, event: "click|view|cart|purchase|like|dislike"}, oldest first; unknown ids are
   * ignored; a model trained with event types reads the types, others read item events as
   * clicks), or after the stored history (search events included) when none
   * is given: [{id, score, because: [ids], becauseQueries: [texts]}]. With
   * `candidates` (item ids), only those are ranked; ids in `exclude` are never returned (with
   * the stored history, items marked "not interested" are excluded too). `context: {item}` ranks
   * in the context of the item on screen (a product page): it counts as the newest event for
   * this request only, is not stored, and is not recommended. `context: {hour, page, device}`
   * is the request's scene for models trained with scene context (defaults: the local hour,
   * this device's class; page types: home, product, search, category, cart). `muted`: persona
   * entries (genres, categories) the visitor removed; a model with a persona input then reads
   * the history without them. `calibrate` (0–1, default 0): re-rank the model's best 100 so that
   * the list's genre mix follows the history's (Steck's calibration, as `ranklet recommend
   * --calibrate`, the model's first 5 kept in place; reports/quality.md chose 0.1 on ml-100k's validation users, and
   * `<ranklet-shelf>` uses it by default; needs the catalogue's genres or
   * categories, so not with a partitioned index). `because` (0–10, default 2): reasons per
   * item — the history events (clicks, likes, searches) whose removal lowers the item's score
   * the most, the model's own leave-one-out attribution (one batched encoder pass; 0 skips it).
   */
  async recommend({ k = 10, history, excludeSeen = true, candidates, exclude, context, muted, calibrate = 0, because = 2 } = {}) {
    const c = candidates === undefined ? null : Array.from(candidates, String);
    const x = exclude === undefined ? null : Array.from(exclude, String);
    const ctx = {
      item: context?.item === undefined || context?.item === null ? undefined : String(context.item),
      // The scene (read by a model trained with --scene-context): local hour and this device's
      // class unless given; the page type only if the host says (home, product, search,
      // category, cart).
      hour: Number.isInteger(context?.hour) ? context.hour : new Date().getHours(),
      page: context?.page,
      device: context?.device ?? deviceClass(),
    };
    if (!(calibrate >= 0 && calibrate <= 1)) throw new Error(`calibrate: ${calibrate} is not in [0, 1]`);
    if (!(Number.isInteger(because) && because >= 0 && because <= 10)) throw new Error(`because: ${because} is not a whole number in 0..10`);
    const args = { handle: this.handle, k, excludeSeen, candidates: c, exclude: x, context: ctx,
      muted: muted === undefined ? null : Array.from(muted, String), calibrate, because };
    if (history === undefined) return this.client.call('recommend', args);
    if (this.partitioned) return this.client.call('recommend', { ...args, history: Array.from(history) });
    if (!this.rowOf) throw new Error('index(catalog) first');
    // An explicit history is encoded here and its typed arrays transferred: a long history of
    // id strings would otherwise be cloned to the worker and looked up there.
    const { rows, kinds, queries, avoid } = encodeHistory(Array.isArray(history) ? history : Array.from(history), {
      rowOf: this.rowOf, items: this.rowOf.size, maxLen: this.maxLen, typed: this.readsEventTypes, contextItem: ctx.item,
    });
    return this.client.call('recommend', { ...args, encoded: { rows, kinds, queries, avoid } }, undefined,
      [rows.buffer, kinds.buffer, avoid.buffer]);
  }

  /**
   * The persona the model reads (a model trained with --persona; [] otherwise) after `history`
   * (as in recommend; the stored one when none): [{category, weight, share}], strongest first,
   * each event weighted by its type and, for a CLSD model, its click confidence. `muted`
   * facets are left out.
   */
  async persona({ history, muted, top = 5 } = {}) {
    const h = history === undefined ? undefined : Array.from(history, (x) => (x && typeof x === 'object' ? { ...x } : String(x)));
    return this.client.call('persona', { handle: this.handle, history: h, muted: muted === undefined ? null : Array.from(muted, String), top });
  }

  close() {
    this.client.terminate();
  }
}

/** Cosine similarity of two vectors. */
export function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

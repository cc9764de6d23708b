// The Web Worker that owns the wasm module and the models: all model work happens here, so
// the page's main thread never blocks. Messages: {id, op, args} → {id, ok, result | error}.
import { forgetAll, getStored, getVectors, putVectors, readHistory, recordEvent, sha256 } from './store.js';
import { webgpuUnusable } from './webgpu.js';
import { encodeHistory, eventName, isDislike, queryWeights, reasonsOf } from './history.js';
import { ShardStore } from './shards.js';
// The scene vocabularies of the context encoders, index 0 unknown: the shared contract.
import { DEVICE_CLASSES, PAGE_TYPES } from './contract.js';

// Two builds of the wasm module: the CPU one every visitor downloads (pkg/), and the one with
// burn's WebGPU backend (pkg-webgpu/), fetched only when WebGPU is chosen.
const modules = new Map();
// [hour, page, device] for the ranker (255: unknown); an unknown name is an error naming it.
function sceneRow(context) {
  const hour = Number.isInteger(context?.hour) && context.hour >= 0 && context.hour < 24 ? context.hour : 255;
  const index = (list, name, what) => {
    if (name === undefined || name === null || name === 'unknown') return 255;
    const i = list.indexOf(String(name));
    if (i < 0) throw new Error(`recommend: unknown ${what} ${JSON.stringify(name)} (one of ${list.slice(1).join(', ')})`);
    return i;
  };
  return Uint8Array.of(hour, index(PAGE_TYPES, context?.page, 'page type'), index(DEVICE_CLASSES, context?.device, 'device class'));
}
function wasm(kind) {
  const backend = kind === 'webgpu' ? 'webgpu' : 'cpu';
  if (!modules.has(backend)) {
    const url = backend === 'webgpu' ? './pkg-webgpu/ranklet.js' : './pkg/ranklet.js';
    const loading = import(url).then(async (m) => ({ m, instance: await m.default() }));
    loading.catch(() => modules.delete(backend)); // a failed fetch can be retried
    modules.set(backend, loading);
  }
  return modules.get(backend);
}

// The module for a chosen backend; without the WebGPU module (not built, or its download
// failed) the CPU one runs, and the reason says so.
async function moduleFor(choice) {
  if (choice.backend !== 'webgpu') return (await wasm('cpu')).m;
  try {
    return (await wasm('webgpu')).m;
  } catch (err) {
    choice.backend = 'cpu';
    choice.note = `the WebGPU module could not be loaded (${err.message}); using the CPU backend`;
    return (await wasm('cpu')).m;
  }
}

const encoders = new Map();
let nextHandle = 1;

// The precomputed item index served with a bundle (`ranklet index`; by default the folder
// `index/` inside the bundle): loaded into the ranker, checked against the bundle. Returns
// {items} when one was loaded, {note} when it was there but unusable (the shelf then embeds the
// catalogue on the device, as without an index), or {} when there is none.
async function loadIndex(ranker, bundleManifest, url) {
  if (new URL(url).origin !== self.location.origin) {
    return { note: `index ${url}: refusing to load an index from another origin` };
  }
  try {
    const manifestBytes = await fetchBytes(url, 'manifest.json', { optional: true, what: '' });
    if (!manifestBytes) return {};
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    if (manifest.partitions) return await loadCells(ranker, bundleManifest, url, manifestBytes, manifest);
    const files = {};
    for (const name of Object.keys(manifest.files ?? {})) files[name] = await fetchBytes(url, name);
    const items = ranker.loadIndex(bundleManifest, manifestBytes, files);
    const bytes = manifestBytes.length + Object.values(files).reduce((n, f) => n + f.length, 0);
    return { items, bytes };
  } catch (err) {
    return { note: `the item index was not used (${err.message ?? err}); the catalogue is embedded on this device` };
  }
}

// A partitioned index: its manifest and centroids, and the popular shard (the shelf before any
// click; candidates in every ranking). The other shards come a fixed number per recommendation
// (shards.js). Returns {items, bytes, cells}.
async function loadCells(ranker, bundleManifest, url, manifestBytes, manifest) {
  const p = manifest.partitions;
  const centroids = await fetchBytes(url, p.centroids);
  const info = ranker.loadPartitions(bundleManifest, manifestBytes, centroids);
  const popularBytes = await fetchBytes(url, info.popular);
  const open = (name, bytes) => {
    const s = ranker.openShard(name, bytes);
    return { ids: s.ids, items: JSON.parse(s.items), rows: s.rows };
  };
  const popular = open(info.popular, popularBytes);
  const dim = popular.rows.length / Math.max(1, popular.ids.length);
  const cells = {
    info,
    popular,
    // The key of this index's item rows in the IndexedDB vector store (history items' rows
    // stay on the device, so a later visit can read its history without fetching anything).
    key: `cells:${manifest.model.manifest_sha256}:${manifest.dim}`,
    store: new ShardStore({ files: info.shards, load: (name) => fetchBytes(url, name), open }),
    dim,
    // Rows and shelf data by id of the items this device was shown (history candidates).
    known: new Map(),
    // Ids whose rows are in the device's store already.
    stored: new Set(),
  };
  popular.ids.forEach((id, r) => remember(cells, id, rowIn(popular, r, dim), popular.items[r]));
  return { items: info.items, bytes: manifestBytes.length + centroids.length + popularBytes.length, cells };
}

// Remembers an item's row and shelf data by id: the items a visitor can click next (popular,
// shown, in a cached shard). The row is copied, so a remembered item does not keep its whole
// shard in memory after the shard cache drops it.
function remember(cells, id, row, item) {
  cells.known.set(id, { row: row.slice(), item });
}

// Row `r` of a source ({ids, rows, items}, rows `dim` per id).
const rowIn = (source, r, dim) => source.rows.subarray(r * dim, (r + 1) * dim);

// Fetches one file of a bundle or index; errors name the file (after `what`) and the HTTP
// status. With `optional`, a file that is absent (404) resolves to null.
async function fetchBytes(base, name, { optional = false, what = 'model file ' } = {}) {
  const url = new URL(name, base);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${what}${name}: cannot fetch ${url.pathname} (${err.message})`);
  }
  if (optional && response.status === 404) return null;
  if (!response.ok) throw new Error(`${what}${name}: HTTP ${response.status} for ${url.pathname}`);
  return new Uint8Array(await response.arrayBuffer());
}

function register(encoder) {
  const handle = nextHandle++;
  encoders.set(handle, encoder);
  return {
    handle,
    backend: encoder.backend,
    backendReason: encoder.backendReason,
    dim: encoder.dim,
    name: encoder.name,
  };
}

function encoderOf(handle) {
  const encoder = encoders.get(handle);
  if (!encoder) throw new Error(`no encoder with handle ${handle} (closed?)`);
  return encoder;
}

// "auto" takes WebGPU only on a real GPU (see webgpu.js).
async function chooseBackend(preference) {
  if (preference !== 'auto') return { backend: preference, note: null };
  const unusable = await webgpuUnusable();
  if (!unusable) return { backend: 'webgpu', note: null };
  const note = `auto: ${unusable.reason}${unusable.emulated ? '; the wasm CPU backend is faster' : ''}`;
  return { backend: 'cpu', note };
}

function withNote(info, note) {
  if (note) info.backendReason = note;
  return info;
}

// A recommender and the encoder of its bundle, with the indexed catalog's rows.
const shops = new Map();

function shopOf(handle) {
  const shop = shops.get(handle);
  if (!shop) throw new Error(`no recommender with handle ${handle} (closed?)`);
  return shop;
}

// Text vectors with a shop's encoder, through the IndexedDB cache (model + text): only texts
// not seen before are embedded, `batch` at a time, with `progress` after each batch. Used for
// the catalogue and for search queries. Resolves to {vectors, embedded, cacheNote}.
async function cachedEmbed(shop, texts, { batch = 32, progress = () => {} } = {}) {
  const dim = shop.ranker.textDim;
  const vectors = new Float32Array(texts.length * dim);
  const keys = await Promise.all(texts.map((t) => sha256(`${shop.modelKey}\n${t}`)));
  let cached = [];
  let cacheNote = null;
  try {
    cached = await getVectors(keys);
  } catch (err) {
    cacheNote = `the vector cache could not be read (${err?.message ?? err})`;
  }
  const missing = [];
  texts.forEach((_, r) => {
    const v = cached[r];
    if (v && v.length === dim) vectors.set(v, r * dim);
    else missing.push(r);
  });
  const fresh = [];
  for (let start = 0; start < missing.length; start += batch) {
    const part = missing.slice(start, start + batch);
    const encoder = await shop.loadEncoder();
    const flat = await encoder.embed(part.map((r) => texts[r]));
    shop.embedCalls += 1;
    part.forEach((r, j) => {
      const v = flat.slice(j * dim, (j + 1) * dim);
      vectors.set(v, r * dim);
      fresh.push([keys[r], v]);
    });
    progress({ embedded: fresh.length, toEmbed: missing.length, items: texts.length });
  }
  if (fresh.length) cacheNote = (await putVectors(fresh)) ?? cacheNote;
  return { vectors, embedded: missing.length, cacheNote };
}

// The item rows of a precomputed index: `rows` (each catalogue item's row, 0xFFFFFFFF where
// the index lacks it) and, for those missing, their texts in order, embedded here (through the
// IndexedDB cache) and put through the tower. Resolves to {embedded, cacheNote, fromIndex}.
async function installIndexRows(shop, rows, missingTexts, options) {
  let towered = new Float32Array(0);
  let embedded = 0;
  let cacheNote = null;
  if (missingTexts.length) {
    const done = await cachedEmbed(shop, missingTexts, options);
    ({ embedded, cacheNote } = done);
    towered = await shop.ranker.towerRows(done.vectors);
  }
  shop.ranker.setItemRows(rows, towered);
  return { embedded, cacheNote, fromIndex: rows.length - missingTexts.length };
}

// Stored events as a history: {query} for a search, {item, event} for an item event (a rating
// read as feedback); anything else is left out.
const historyOf = (events) => events
  .map((e) => (e.event === 'search' ? { query: e.query } : e.item === undefined ? undefined : { item: e.item, event: eventName(e) }))
  .filter((h) => h !== undefined);

// The stored history as recommend() reads it; items marked "not interested" (dislike) are
// added to `excluded`.
async function storedHistory(excluded) {
  const events = await readHistory();
  for (const e of events) if (e.item !== undefined && isDislike(eventName(e))) excluded.add(String(e.item));
  return historyOf(events);
}

// Candidate sources ({ids, rows, items}: rows `dim` per id) as one set to rank: an id in
// several sources is taken once, from the first. The last `disjoint` sources share no id with
// each other (a partitioned index's cells, ~10 000 rows per recommendation): their ids are only
// checked against the sources before them, and a source that loses no id is copied as one
// block. Returns {ids, rows, row (id → row for the first source's ids: the history's),
// itemAt(k)}.
function candidateSet(sources, dim, disjoint = 0) {
  const taken = new Set();
  const parts = []; // [source, its rows kept (null: all)]
  let n = 0;
  for (const source of sources) {
    const keep = [];
    let all = true;
    source.ids.forEach((id, r) => {
      if (taken.has(id)) all = false;
      else keep.push(r);
    });
    if (parts.length < sources.length - disjoint) for (const r of keep) taken.add(source.ids[r]);
    parts.push([source, all ? null : keep]);
    n += keep.length;
  }
  const ids = new Array(n);
  const rows = new Float32Array(n * dim);
  const fromSource = new Uint16Array(n);
  const fromRow = new Uint32Array(n);
  let at = 0;
  parts.forEach(([source, keep], s) => {
    const count = keep ? keep.length : source.ids.length;
    if (!keep) rows.set(source.rows.subarray(0, count * dim), at * dim);
    for (let j = 0; j < count; j += 1) {
      const r = keep ? keep[j] : j;
      if (keep) rows.set(rowIn(source, r, dim), (at + j) * dim);
      ids[at + j] = source.ids[r];
      fromSource[at + j] = s;
      fromRow[at + j] = r;
    }
    at += count;
  });
  const first = parts.length ? (parts[0][1] ?? parts[0][0].ids.map((_, r) => r)) : [];
  return {
    ids,
    rows,
    row: new Map(first.map((_, j) => [ids[j], j])),
    itemAt: (k) => parts[fromSource[k]][0].items[fromRow[k]],
  };
}

// A recommendation over a partitioned index: the visitor's state from the history items' rows
// (kept on the device), the nearest cells probed and their shards fetched (a fixed count with
// decoys, shards.js), then the history, the popular shard and the probed shards ranked together.
// Results carry the shelf data of each item (`item`: its catalogue object).
async function recommendCells(shop, { history, k, excludeSeen, candidates, exclude, context, because }) {
  const { cells, ranker } = shop;
  const dim = cells.dim;
  const excluded = new Set(Array.from(exclude ?? [], String));
  const scene = sceneRow(context);
  const typed = ranker.readsEventTypes;
  const contextItem = context?.item === undefined || context?.item === null ? undefined : String(context.item);
  history ??= await storedHistory(excluded);
  if (contextItem !== undefined) excluded.add(contextItem);
  const entries = Array.from(history, (h) => (typeof h === 'string' || typeof h === 'number' ? { item: String(h) } : h));
  // History items' rows: from this visit's shelf or cached shards, else from the device's own
  // store.
  const mentioned = entries.filter((h) => h.item !== undefined).map((h) => String(h.item));
  if (contextItem !== undefined) mentioned.push(contextItem);
  for (const id of mentioned) {
    const found = cells.known.has(id) ? null : cells.store.find(id);
    if (found) remember(cells, id, rowIn(found.shard, found.r, dim), found.shard.items[found.r]);
  }
  const unknown = [...new Set(mentioned.filter((id) => !cells.known.has(id)))];
  if (unknown.length) {
    try {
      const stored = await getStored(unknown.map((id) => `${cells.key}\n${id}`));
      unknown.forEach((id, j) => {
        // {row, item}: the row ranks, the item names it on the shelf ("because you liked …").
        const v = stored[j];
        if (v?.row instanceof Float32Array && v.row.length === dim) {
          cells.known.set(id, { row: v.row, item: v.item ?? { id } });
          cells.stored.add(id);
        }
      });
    } catch { /* an unreadable store: those events are left out */ }
  }
  const usable = entries.filter((h) => h.item === undefined || cells.known.has(String(h.item)));
  // A history item whose row this device no longer holds is not read, but it was seen: it is
  // not recommended back either.
  if (excludeSeen) for (const id of mentioned) if (!cells.known.has(id)) excluded.add(id);
  // The item on screen (a product page) reads as the newest event, when its row is known.
  const onScreen = contextItem !== undefined && cells.known.has(contextItem) ? contextItem : undefined;
  const historyIds = [...new Set(usable.filter((h) => h.item !== undefined).map((h) => String(h.item)))];
  if (onScreen !== undefined && !historyIds.includes(onScreen)) historyIds.push(onScreen);
  // The history items as a candidate source.
  const seen = { ids: historyIds, rows: new Float32Array(historyIds.length * dim), items: [] };
  historyIds.forEach((id, r) => {
    const { row, item } = cells.known.get(id);
    seen.rows.set(row, r * dim);
    seen.items.push(item);
  });
  let wanted = [];
  if (historyIds.length) {
    const base = candidateSet([seen], dim);
    ranker.setCandidateRows(base.rows);
    const onlyItems = usable.filter((h) => h.item !== undefined);
    const enc = encodeHistory(onlyItems, { rowOf: base.row, items: base.ids.length, maxLen: ranker.maxLen, typed, contextItem: onScreen });
    const state = await ranker.userState(enc.rows, typed ? enc.kinds : null, ranker.readsContext ? scene : null);
    if (state.length) wanted = Array.from(ranker.probeCells(state, cells.nprobe));
  }
  const got = await cells.store.get(wanted, cells.nprobe + cells.decoys);
  // What this recommendation fetched (for stats()): the counts and any shard skipped.
  cells.last = { wanted: wanted.length, requested: got.requested, fetchedWanted: got.fetchedWanted, failed: got.failed };
  // History items' rows stay on this device for later visits (the vector store, by index).
  const fresh = historyIds.filter((id) => !cells.stored.has(id));
  if (fresh.length) {
    fresh.forEach((id) => cells.stored.add(id));
    putVectors(fresh.map((id) => {
      const { row, item } = cells.known.get(id);
      return [`${cells.key}\n${id}`, { row, item }];
    })).catch(() => {});
  }
  if (!historyIds.length && !usable.length) {
    // No history: the popular shard, in its order.
    return cells.popular.ids.map((id, r) => ({ id, score: null, because: [], becauseQueries: [], item: cells.popular.items[r], becauseItems: [], reason: 'popular' }))
      .filter((r) => !excluded.has(r.id)).slice(0, k);
  }
  const probed = wanted.filter((c) => got.shards.has(c)).map((c) => got.shards.get(c));
  // The history first: its ids keep rows 0.., which encodeHistory looks up.
  const all = candidateSet([seen, cells.popular, ...probed], dim, probed.length);
  ranker.setCandidateRows(all.rows);
  const n = all.ids.length;
  // New items lifted by their catalogue popularity, against the whole catalogue's largest.
  ranker.setCandidatePopularity(Float32Array.from(all.ids, (_, r) => {
    const p = all.itemAt(r)?.popularity;
    return typeof p === 'number' ? p : NaN;
  }), all.ids);
  const { rows, kinds, queries, avoid } = encodeHistory(usable, { rowOf: all.row, items: n, maxLen: ranker.maxLen, typed, contextItem: onScreen });
  const queryVectors = queries.length ? (await cachedEmbed(shop, queries)).vectors : null;
  const wantSet = candidates ? new Set(Array.from(candidates, String)) : null;
  const want = wantSet ? n : Math.min(n, k + excluded.size);
  const recs = await ranker.recommend(rows, want, excludeSeen, queryVectors, queryWeights(rows, n, queries.length),
    avoid.length ? avoid : null, typed ? kinds : null, ranker.readsContext ? scene : null, null, because);
  const out = recs.map((r) => ({
    id: all.ids[r.item],
    score: r.score,
    because: r.because.filter((b) => b < n).map((b) => all.ids[b]),
    becauseQueries: r.because.filter((b) => b >= n).map((b) => queries[b - n]),
    reasons: reasonsOf(r.because, { rows, kinds, items: n, idOf: (b) => all.ids[b], queries }),
    item: all.itemAt(r.item),
    // The shelf data of the `because` items (history items: the widget names them, and no
    // catalogue is there to look them up).
    becauseItems: r.because.filter((b) => b < n).map((b) => all.itemAt(b)),
    row: r.item,
  })).filter((r) => !excluded.has(r.id) && (!wantSet || wantSet.has(r.id))).slice(0, k);
  // What the shelf shows can be clicked next: its rows are remembered.
  for (const r of out) if (!cells.known.has(r.id)) remember(cells, r.id, rowIn(all, r.row, dim), r.item);
  return out.map(({ row, ...r }) => r);
}

const ops = {
  // Loads a bundle with a recommender: its encoder (to embed the catalog) and rec.safetensors.
  async loadShop({ url, backend, historySelect = 'relevant', recent = 20, index, nprobe, decoys }) {
    const base = url.endsWith('/') ? url : url + '/';
    if (new URL(base).origin !== self.location.origin) {
      throw new Error(`model ${url}: refusing to load a model from another origin`);
    }
    const manifestBytes = await fetchBytes(base, 'manifest.json');
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    if (!manifest.recommender) throw new Error(`model ${url}: manifest.json has no recommender (a text encoder only)`);
    // One file at a time: concurrent fetches from the test server (`ranklet serve`) were seen
    // to stall now and then; the files are few and large, so little is lost.
    const fetchAll = async (names) => {
      const files = {};
      for (const n of names.filter(Boolean)) files[n] = await fetchBytes(base, n);
      return files;
    };
    const recFiles = await fetchAll([manifest.recommender.weights, manifest.recommender.items]);
    const choice = await chooseBackend(backend);
    const { Encoder, Ranker } = await moduleFor(choice);
    const ranker = await Ranker.load(manifestBytes, recFiles, choice.backend);
    // Beyond the model's window, the newest `recent` events plus the older ones nearest to them
    // (reports/history.json: no loss against the plain window on ml-100k's long histories).
    ranker.setHistorySelect(historySelect, recent);
    const indexUrl = index ? new URL(index, self.location.href).href : new URL('index/', base).href;
    const loaded = await loadIndex(ranker, manifestBytes, indexUrl.endsWith('/') ? indexUrl : indexUrl + '/');
    const handle = nextHandle++;
    // The cache key of this model's vectors: its encoder files' checksums.
    const e = manifest.encoder;
    const modelKey = [e.config, e.tokenizer, e.weights].map((n) => manifest.files[n]?.sha256).join(':') + `:${e.max_seq_length}:${e.normalize}`;
    const shop = { encoder: null, ranker, ids: null, row: null, modelKey, embedCalls: 0, indexed: loaded.items ?? 0, downloaded: 0, cells: loaded.cells ?? null };
    if (shop.cells) {
      // The page may probe more or fewer cells, or change the decoys, than the index says.
      shop.cells.nprobe = Number.isInteger(nprobe) && nprobe > 0 ? nprobe : shop.cells.info.nprobe;
      shop.cells.decoys = Number.isInteger(decoys) && decoys >= 0 ? decoys : shop.cells.info.decoys;
    }
    // The encoder: needed to embed catalogue items (all of them without an index; with one,
    // only new or changed items) and search queries. With an index it is fetched the first
    // time one of those needs it, so a visit that needs none downloads none of it.
    let encoderLoading = null;
    shop.loadEncoder = () => {
      encoderLoading ??= (async () => {
        const files = await fetchAll([e.config, e.tokenizer, e.weights]);
        shop.downloaded += Object.values(files).reduce((n, f) => n + f.length, 0);
        shop.encoder = await Encoder.load(manifestBytes, files, choice.backend);
        return shop.encoder;
      })();
      encoderLoading.catch(() => { encoderLoading = null; });
      return encoderLoading;
    };
    if (!shop.indexed) await shop.loadEncoder();
    shops.set(handle, shop);
    const bytes = manifestBytes.length + Object.values(recFiles).reduce((n, f) => n + f.length, 0) + shop.downloaded + (loaded.bytes ?? 0);
    return withNote({ handle, backend: ranker.backend, backendReason: ranker.backendReason, mode: ranker.mode,
      maxLen: ranker.maxLen, readsEventTypes: ranker.readsEventTypes, personaFacets: ranker.personaFacets, name: manifest.name,
      dim: ranker.textDim, bytes, indexItems: loaded.items ?? 0, note: loaded.note,
      partitioned: shop.cells ? { shards: shop.cells.info.shards.length, nprobe: shop.cells.nprobe, decoys: shop.cells.decoys,
        popular: shop.cells.popular.items } : null }, choice.note);
  },
  // Embeds the catalog's item texts (the same texts as natively) and hands them to the ranker.
  async index({ handle, catalog, batch = 32 }, progress) {
    const shop = shopOf(handle);
    // A partitioned index needs no catalogue: its shards carry what the shelf shows.
    if (shop.cells) return { items: shop.cells.info.items, embedded: 0, reused: 0, fromIndex: shop.cells.info.items, partitioned: true, ids: null, newIds: [] };
    const text = typeof catalog === 'string' ? catalog : JSON.stringify(catalog);
    let embedded, cacheNote, fromIndex = 0;
    if (shop.indexed && shop.ranker.mode === 'inductive') {
      // The precomputed index holds the item vectors of every item whose text it was built
      // from; only new and changed items are embedded here (through the IndexedDB cache). One
      // pass in wasm reads the catalogue against the index; only the missing texts come back
      // (an inductive model ranks any catalogue, in its own order).
      const { ids, rows, missingTexts, popularity } = shop.ranker.indexCatalog(text);
      // setItemRows takes the catalogue's persona facets along.
      ({ embedded, cacheNote, fromIndex } = await installIndexRows(shop, rows, missingTexts, { batch, progress }));
      shop.ids = ids;
      shop.ranker.setItemPopularity(popularity, ids);
    } else {
      const { catalogTexts } = (await wasm('cpu')).m;
      const [ids, texts, facets, popularity] = catalogTexts(text);
      let order = ids.map((_, i) => i);
      if (shop.ranker.mode !== 'inductive') {
        // ID rows: the catalog must be the model's, in its row order.
        const at = new Map(ids.map((id, i) => [id, i]));
        const rows = shop.ranker.items;
        const missing = rows.filter((id) => !at.has(id));
        if (missing.length || rows.length !== ids.length) {
          throw new Error(`catalog: this ${shop.ranker.mode} model ranks its own ${rows.length} items; the catalog has ${ids.length} (the inductive mode ranks any catalog)`);
        }
        order = rows.map((id) => at.get(id));
      }
      if (shop.indexed) {
        // The index's rows of this model's own items (in its row order); changed texts are
        // embedded and go through the tower.
        const rows = shop.ranker.indexRowsOf(order.map((i) => ids[i]), order.map((i) => texts[i]));
        const missingTexts = [];
        rows.forEach((r, k) => { if (r === 0xFFFFFFFF) missingTexts.push(texts[order[k]]); });
        ({ embedded, cacheNote, fromIndex } = await installIndexRows(shop, rows, missingTexts, { batch, progress }));
      } else {
        // Vectors come from the IndexedDB cache (model + text); only texts not seen are embedded.
        const done = await cachedEmbed(shop, order.map((i) => texts[i]), { batch, progress });
        ({ embedded, cacheNote } = done);
        shop.ranker.setTextVectors(done.vectors, order.map((i) => ids[i]));
      }
      // The persona facets (genres, else categories) of each row, for a model with a persona input.
      shop.ranker.setItemFacets(order.map((i) => facets[i]));
      shop.ids = order.map((i) => ids[i]);
      // New items are lifted by the catalogue's popularity figures, as natively.
      shop.ranker.setItemPopularity(Float32Array.from(order, (i) => popularity[i]), shop.ids);
    }
    shop.row = new Map(shop.ids.map((id, r) => [id, r]));
    // The items this model never trained on (the bundle decides which): a "new arrivals" shelf.
    return { items: shop.ids.length, embedded, reused: shop.ids.length - embedded - fromIndex, fromIndex, cacheNote, ids: shop.ids,
      newIds: shop.ranker.newItemsOf(shop.ids) };
  },
  // Item vectors embedded elsewhere (e.g. natively with `ranklet embed`, same encoder): ids and
  // a flat Float32Array of ids.length × dim. Inductive models only.
  async indexVectors({ handle, ids, vectors }) {
    const shop = shopOf(handle);
    if (shop.ranker.mode !== 'inductive') throw new Error(`indexVectors: a ${shop.ranker.mode} model ranks its own items; use index(catalog)`);
    if (vectors.length !== ids.length * shop.ranker.textDim) {
      throw new Error(`indexVectors: ${vectors.length} floats for ${ids.length} items of ${shop.ranker.textDim} dims`);
    }
    shop.ids = Array.from(ids, String);
    shop.ranker.setTextVectors(vectors, shop.ids);
    shop.row = new Map(shop.ids.map((id, r) => [id, r]));
    return { items: shop.ids.length, newIds: shop.ranker.newItemsOf(shop.ids) };
  },
  // Memory in use: the wasm module's linear memory and (Chromium) the worker's JS heap.
  async memory() {
    let wasmBytes = 0;
    for (const loading of modules.values()) wasmBytes += (await loading).instance.memory.buffer.byteLength;
    return { wasm_bytes: wasmBytes, modules: [...modules.keys()], js_heap_bytes: self.performance?.memory?.usedJSHeapSize ?? null };
  },
  // Appends a visitor event to the local history (bounded; safe with several tabs).
  async record({ event, limit = 1000 }) {
    return recordEvent(event, limit);
  },
  async history() {
    return readHistory();
  },
  async forget() {
    await forgetAll();
    return true;
  },
  async stats({ handle }) {
    const shop = shopOf(handle);
    return { embedCalls: shop.embedCalls, shardRequests: shop.cells?.store.requests ?? null, lastShards: shop.cells?.last ?? null };
  },
  // History entries are item ids, {item, event} or {query} (search events), oldest first;
  // `encoded` is such a history already encoded by the page (history.js: rows, kinds, queries,
  // avoid). Without either, the stored history; items marked "not interested" (dislike) are
  // then left out of the answer. `exclude` leaves out more ids. `context.item`: the item on
  // screen now (a product page) ranks as the newest event for this request only — not stored,
  // not recommended. `context.hour/page/device`: the request's scene, for a model trained with
  // scene context. `muted`: persona facets the visitor removed. `calibrate`: Steck's weight
  // (0–1) for a list whose genre mix follows the history's (not with a partitioned index).
  // `because`: reasons per item (the model's leave-one-out attribution); 0 skips them.
  async recommend({ handle, history, encoded, k = 10, excludeSeen = true, candidates = null, exclude = null, context = null, muted = null, calibrate = 0, because = 2 }) {
    const shop = shopOf(handle);
    if (shop.cells) return recommendCells(shop, { history, k, excludeSeen, candidates, exclude, context, because });
    if (!shop.ids) throw new Error('index(catalog) first');
    // Persona entries the visitor removed leave the model's persona input.
    shop.ranker.setMutedFacets(Array.from(muted ?? [], String));
    const excluded = new Set(Array.from(exclude ?? [], String));
    // Items marked "not interested": left out, and their neighbours pushed down. A model that
    // reads event types also sees them in the sequence, as dislikes (DUMN purifies the state
    // with them); for one that does not, a dislike would read as a click, so it stays out.
    const typed = shop.ranker.readsEventTypes;
    const scene = sceneRow(context); // checked whether or not the model reads it
    const n = shop.ids.length;
    const contextItem = context?.item === undefined || context?.item === null ? undefined : String(context.item);
    if (!encoded) {
      history ??= await storedHistory(excluded);
      // Item events are catalog rows; search queries (only those inside the model's window of
      // recent events matter) are rows after the catalog, embedded by the same encoder.
      encoded = encodeHistory(history, { rowOf: shop.row, items: n, maxLen: shop.ranker.maxLen, typed, contextItem });
    }
    if (contextItem !== undefined) excluded.add(contextItem);
    const { rows, kinds, queries, avoid } = encoded;
    const queryVectors = queries.length ? (await cachedEmbed(shop, queries)).vectors : null;
    // With candidates, rank the whole catalog and keep theirs (top-k stays on the CPU).
    const wanted = candidates ? new Set(Array.from(candidates, String)) : null;
    const want = wanted ? n : Math.min(n, k + excluded.size);
    const recs = await shop.ranker.recommend(rows, want, excludeSeen, queryVectors, queryWeights(rows, n, queries.length),
      avoid.length ? avoid : null, typed ? kinds : null, shop.ranker.readsContext ? scene : null, calibrate > 0 ? calibrate : null, because);
    const out = recs.map((r) => ({
      id: shop.ids[r.item],
      score: r.score,
      because: r.because.filter((b) => b < n).map((b) => shop.ids[b]),
      becauseQueries: r.because.filter((b) => b >= n).map((b) => queries[b - n]),
      reasons: reasonsOf(r.because, { rows, kinds, items: n, idOf: (b) => shop.ids[b], queries }),
    })).filter((r) => !excluded.has(r.id) && (!wanted || wanted.has(r.id)));
    return out.slice(0, k);
  },
  // The persona the model reads after a history (explicit or stored; muted facets left out):
  // [{category, weight, share}] with positive weights, strongest first; [] for a model without
  // persona input.
  async persona({ handle, history, muted = null, top = 5 }) {
    const shop = shopOf(handle);
    if (!shop.ids) throw new Error('index(catalog) first');
    const facets = shop.ranker.personaFacets;
    if (!facets.length) return [];
    shop.ranker.setMutedFacets(Array.from(muted ?? [], String));
    if (!history) {
      history = historyOf(await readHistory());
    }
    const n = shop.ids.length;
    // Every item event the model would read (a dislike counts against); queries have no facets.
    const { rows, kinds } = encodeHistory(history.filter((h) => !(h && typeof h === 'object' && h.item === undefined)),
      { rowOf: shop.row, items: n, maxLen: shop.ranker.maxLen, typed: true });
    const weights = await shop.ranker.persona(rows, kinds);
    const positive = [...weights].map((w, i) => ({ category: facets[i], weight: w })).filter((p) => p.weight > 0)
      .sort((a, b) => b.weight - a.weight);
    const total = positive.reduce((t, p) => t + p.weight, 0);
    return positive.slice(0, top).map((p) => ({ ...p, share: p.weight / total }));
  },
  // Loads a bundle from a folder URL on the page's origin: manifest.json, then the encoder files
  // it names; the wasm side checks every size and sha256 before parsing anything.
  async load({ url, backend }) {
    const base = url.endsWith('/') ? url : url + '/';
    if (new URL(base).origin !== self.location.origin) {
      throw new Error(`model ${url}: refusing to load a model from another origin`);
    }
    const manifestBytes = await fetchBytes(base, 'manifest.json');
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    const names = [manifest.encoder?.config, manifest.encoder?.tokenizer, manifest.encoder?.weights];
    const files = {};
    for (const n of names.filter(Boolean)) files[n] = await fetchBytes(base, n);
    const choice = await chooseBackend(backend);
    const { Encoder } = await moduleFor(choice);
    return withNote(register(await Encoder.load(manifestBytes, files, choice.backend)), choice.note);
  },
  async embed({ handle, texts }) {
    const flat = await encoderOf(handle).embed(texts);
    return { value: flat, transfer: [flat.buffer] };
  },
  async tokenize({ handle, text }) {
    return Array.from(encoderOf(handle).tokenize(text));
  },
  // The encoder texts of a catalogue's items, exactly as index() embeds them.
  async catalogTexts({ catalog }) {
    const { catalogTexts } = (await wasm('cpu')).m;
    return catalogTexts(typeof catalog === 'string' ? catalog : JSON.stringify(catalog))[1];
  },
  async titles({ n, seed }) {
    return (await wasm('cpu')).m.productTitles(n, seed);
  },
  async close({ handle }) {
    encoders.get(handle)?.free();
    encoders.delete(handle);
    const shop = shops.get(handle);
    if (shop) { shop.encoder?.free(); shop.ranker.free(); shops.delete(handle); }
    return true;
  },
};

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    if (!ops[op]) throw new Error(`unknown operation ${op}`);
    // Long operations report progress as {id, progress} messages before their answer.
    const result = await ops[op](args ?? {}, (progress) => self.postMessage({ id, progress }));
    if (result && result.transfer) self.postMessage({ id, ok: true, result: result.value }, result.transfer);
    else self.postMessage({ id, ok: true, result });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};

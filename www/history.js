// A visitor history as the ranker reads it: catalogue rows, behaviour types and search queries.
// Shared by the page side (ranklet.js encodes an explicit history before it crosses to the
// worker: typed arrays are transferred, where 10 000 id strings were cloned and then looked up
// again) and the worker (the stored history).

import { EVENT_KIND, EVENT_KINDS, RATING } from './contract.js';

export { EVENT_KIND };

// Behaviour types as the model numbers them (the contract's EVENT_KIND, aliases included);
// other event names (a rating without a value, anything unknown) read as clicks.
export const kindOf = (event) => EVENT_KIND[event] ?? EVENT_KIND.click;
export const isDislike = (event) => kindOf(event) === EVENT_KIND.dislike;

// A stored event's type, a rating read as feedback as in training (the contract's thresholds).
export const eventName = (e) => (e.event !== RATING.event || !Number.isFinite(e.value) ? e.event
  : e.value >= RATING.likeAt ? 'like' : e.value <= RATING.dislikeAt ? 'dislike' : 'click');

/**
 * Encodes `history` (oldest first: item ids, {item, event} or {query}) for the ranker.
 * `rowOf`: Map item id → catalogue row (unknown ids are skipped); `items`: the catalogue's size
 * (query j becomes row items + j); `maxLen`: the model's window (only queries inside it count);
 * `typed`: whether the model reads behaviour types (otherwise a dislike would read as a click,
 * so it stays out of the sequence); `contextItem`: the item on screen, the newest event for
 * this request. Returns {rows: Uint32Array, kinds: Uint8Array, queries: [texts], avoid:
 * Uint32Array (rows of disliked items), disliked: Set of their ids}.
 */
export function encodeHistory(history, { rowOf, items, maxLen, typed, contextItem }) {
  const length = history.length + (contextItem === undefined ? 0 : 1);
  const rows = new Uint32Array(length);
  const kinds = new Uint8Array(length);
  const queries = [];
  const disliked = new Set();
  const avoid = [];
  const windowStart = length - maxLen;
  let m = 0;
  for (let i = 0; i < history.length; i++) {
    const h = history[i];
    // The common case first: a plain id (a click).
    if (typeof h === 'string' || typeof h === 'number') {
      const r = rowOf.get(typeof h === 'string' ? h : String(h));
      if (r !== undefined) { rows[m] = r; kinds[m++] = 0; }
      continue;
    }
    if (!h || typeof h !== 'object') continue;
    if (h.item === undefined) {
      const text = typeof h.query === 'string' ? h.query.trim() : '';
      if (!text || i < windowStart) continue;
      let j = queries.indexOf(text);
      if (j < 0) { j = queries.length; queries.push(text); }
      rows[m] = items + j;
      kinds[m++] = EVENT_KIND.search;
      continue;
    }
    const id = String(h.item);
    const kind = kindOf(h.event ?? 'click');
    const r = rowOf.get(id);
    if (kind === EVENT_KIND.dislike) {
      if (!disliked.has(id) && r !== undefined) avoid.push(r);
      disliked.add(id);
      if (!typed) continue;
    }
    if (r !== undefined) { rows[m] = r; kinds[m++] = kind; }
  }
  if (contextItem !== undefined) {
    const r = rowOf.get(contextItem);
    if (r === undefined) throw new Error(`recommend: context item ${JSON.stringify(contextItem)} is not in the indexed catalog`);
    rows[m] = r;
    kinds[m++] = 0;
  }
  return { rows: rows.slice(0, m), kinds: kinds.slice(0, m), queries, avoid: Uint32Array.from(avoid), disliked };
}

/**
 * Each query's weight for its relevance term (`rows` from encodeHistory): 1 when it is the
 * newest event, halving with every event after its last occurrence — a search steers the shelf
 * now and fades as the visitor clicks on.
 */
export function queryWeights(rows, items, queryCount) {
  if (!queryCount) return null;
  const lastAt = new Int32Array(queryCount);
  for (let i = 0; i < rows.length; i++) if (rows[i] >= items) lastAt[rows[i] - items] = i;
  return Float32Array.from(lastAt, (at) => 0.5 ** (rows.length - 1 - at));
}

/**
 * A recommendation's `because` rows (strongest first; rows from `items` on are queries) as the
 * visitor's own events: {id, event} (the type of that item's newest event in `rows`/`kinds`,
 * as encodeHistory wrote them) or {query}. `idOf(row)`: the item id of a catalogue row.
 */
export function reasonsOf(because, { rows, kinds, items, idOf, queries }) {
  return because.map((b) => {
    if (b >= items) return { query: queries[b - items] };
    let event = 'click';
    for (let i = rows.length - 1; i >= 0; i--) {
      if (rows[i] === b) { event = EVENT_KINDS[kinds[i]] ?? 'click'; break; }
    }
    return { id: idOf(b), event };
  });
}

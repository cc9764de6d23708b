// www/history.js, the history encoding shared by the page and the worker (plain Node: the
// module is pure JS; the browser tests run it end to end against native rankings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeHistory, queryWeights, EVENT_KIND } from '../../www/history.js';

const rowOf = new Map([['a', 0], ['b', 1], ['c', 2]]);
const base = { rowOf, items: 3, maxLen: 50, typed: true };

test('ids, typed events and queries become rows and kinds; unknown ids are skipped', () => {
  const e = encodeHistory(['a', 'zz', { item: 'b', event: 'cart' }, { query: ' space ' }, 2, { item: 'c' }], base);
  assert.deepEqual([...e.rows], [0, 1, 3, 2]); // 2 is an id string "2": unknown
  assert.deepEqual([...e.kinds], [0, EVENT_KIND.cart, EVENT_KIND.search, 0]);
  assert.deepEqual(e.queries, ['space']);
  assert.equal(e.avoid.length, 0);
});

test('dislikes: avoided rows; kept in the sequence only for a model that reads types', () => {
  const h = ['a', { item: 'b', event: 'dislike' }, { item: 'b', event: 'not_interested' }, { item: 'nope', event: 'dislike' }, 'c'];
  const typed = encodeHistory(h, base);
  assert.deepEqual([...typed.rows], [0, 1, 1, 2]);
  assert.deepEqual([...typed.kinds], [0, 5, 5, 0]);
  assert.deepEqual([...typed.avoid], [1], 'each disliked catalogue item once');
  assert.deepEqual([...typed.disliked].sort(), ['b', 'nope']);
  const plain = encodeHistory(h, { ...base, typed: false });
  assert.deepEqual([...plain.rows], [0, 2]);
  assert.deepEqual([...plain.avoid], [1]);
});

test('repeated queries share a row; queries older than the window are dropped', () => {
  const h = [{ query: 'old' }, 'a', { query: 'x' }, 'b', { query: 'x' }, { query: '' }];
  const e = encodeHistory(h, { ...base, maxLen: 5 });
  assert.deepEqual(e.queries, ['x']);
  assert.deepEqual([...e.rows], [0, 3, 1, 3]);
  const w = queryWeights(e.rows, 3, e.queries.length);
  assert.deepEqual([...w], [1], 'the newest event is the query');
  const later = encodeHistory([{ query: 'x' }, 'a', 'b'], base);
  assert.deepEqual([...queryWeights(later.rows, 3, 1)], [0.25]);
  assert.equal(queryWeights(encodeHistory(['a'], base).rows, 3, 0), null);
});

test('the context item is the newest event; an unknown one is an error naming it', () => {
  const e = encodeHistory(['a'], { ...base, contextItem: 'c' });
  assert.deepEqual([...e.rows], [0, 2]);
  assert.throws(() => encodeHistory(['a'], { ...base, contextItem: 'q' }), /context item "q" is not in the indexed catalog/);
});

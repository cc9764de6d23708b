// The page's side of the Rust/JS contracts (plain Node: the modules are pure JS). The constants
// come from www/contract.js, which a Rust test keeps equal to src/contracts/; these tests check
// that the page's code uses them as the model does — the persona's weighting (a rating of 3 is
// a click, as in training), the event names record() accepts — and that the page's catalogue
// parser accepts and refuses the same catalogues as the Rust reader (the shared case table).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENT_KINDS, EVENT_KIND, EVENT_TYPES, PERSONA_DECAY, PERSONA_WEIGHT, RATING } from '../../www/contract.js';
import { categoriesOf, parseCatalog } from '../../www/catalog.js';
import { eventWeight, personaOf } from '../../www/taste.js';
import { kindOf } from '../../www/history.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('every behaviour type weighs on the persona as the contract says', () => {
  const items = [{ id: 'a', title: 'A', genres: ['G'] }];
  for (const kind of EVENT_KINDS) {
    const w = PERSONA_WEIGHT[kind];
    const persona = personaOf(items, [{ item: 'a', event: kind }]);
    if (w > 0) assert.equal(persona[0].weight, w, kind);
    else assert.deepEqual(persona, [], `${kind} (weight ${w}) is not a positive taste`);
  }
});

test('ratings weigh as their kind does in training: ≥ likeAt like, ≤ dislikeAt dislike, else click', () => {
  assert.equal(eventWeight({ event: 'rating', value: 3 }), PERSONA_WEIGHT.click);
  assert.equal(eventWeight({ event: 'rating', value: RATING.likeAt }), PERSONA_WEIGHT.like);
  assert.equal(eventWeight({ event: 'rating', value: RATING.dislikeAt }), PERSONA_WEIGHT.dislike);
  assert.equal(eventWeight({ event: 'not_interested' }), PERSONA_WEIGHT.dislike);
  assert.equal(eventWeight({ event: 'add_to_cart' }), PERSONA_WEIGHT.cart);
});

test('an event is split evenly over its categories and decays per later event', () => {
  const items = [{ id: 'a', title: 'A', genres: ['X', 'Y'] }, { id: 'b', title: 'B', genres: ['X'] }];
  const persona = personaOf(items, [{ item: 'a', event: 'click' }, { item: 'b', event: 'click' }]);
  const weight = Object.fromEntries(persona.map((p) => [p.category, p.weight]));
  assert.ok(Math.abs(weight.Y - PERSONA_DECAY / 2) < 1e-12, JSON.stringify(weight));
  assert.ok(Math.abs(weight.X - (PERSONA_DECAY / 2 + 1)) < 1e-12, JSON.stringify(weight));
  assert.ok(Math.abs(persona.reduce((s, p) => s + p.share, 0) - 1) < 1e-12);
});

test('every accepted event name maps to a behaviour type', () => {
  for (const name of EVENT_TYPES) {
    if (name === RATING.event) continue;
    assert.ok(EVENT_KIND[name] !== undefined && EVENT_KINDS[kindOf(name)] !== undefined, name);
  }
  assert.equal(EVENT_KINDS[kindOf('unknown-thing')], 'click');
});

test('the page parses the shared catalogue cases as the Rust reader does', () => {
  const table = JSON.parse(readFileSync(path.join(ROOT, 'tests/fixtures/catalog-cases.json'), 'utf8'));
  assert.ok(table.cases.length > 10);
  for (const c of table.cases) {
    if (c.error_at) {
      assert.throws(() => parseCatalog(c.text, 'catalog'), (err) => err.message.startsWith(`${c.error_at}:`), c.name);
    } else {
      const items = parseCatalog(c.text, 'catalog');
      assert.deepEqual(items.map((i) => i.id), c.ids, c.name);
      assert.deepEqual(items.map(categoriesOf), c.facets, c.name);
    }
  }
});

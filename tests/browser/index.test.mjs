// The precomputed item index (`ranklet index`) in headless Chromium, through the real wasm
// module: a bundle served with its index ranks the catalogue without one embedding call and
// gives the native `ranklet recommend --index` answer within 1e-4; a changed and a new item are
// the only ones embedded; a damaged index, or one built with another model, is refused by name
// and the shelf ranks by embedding instead. Every request stays on the page's origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

const BIN = process.env.RANKLET_BIN ?? path.join(ROOT, 'target/release/ranklet');
const FIX = path.join(ROOT, 'target/browser-fixtures-index');
const rel = (p) => '/' + path.relative(ROOT, p).split(path.sep).join('/');
const run = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const HISTORY = ['item-3', 'item-17', 'item-8', 'item-21'];

let server, browser;
before(async () => {
  rmSync(FIX, { recursive: true, force: true });
  run('fixture', '--out', FIX);
  const train = (name, seed) => run('train', '--data', path.join(FIX, 'shop'), '--text-model', path.join(FIX, 'encoder'),
    '--mode', 'inductive', '--out', path.join(FIX, name), '--epochs', '3', '--hidden', '16', '--heads', '2', '--inner', '32',
    '--layers', '1', '--experts', '2', '--max-len', '10', '--batch-size', '16', '--quiet', '--restart', '--seed', String(seed),
    '--checkpoint', path.join(FIX, `ck-${name}`), '--cache', path.join(FIX, 'vectors'));
  train('bundle', 2020);
  train('other', 7);
  for (const name of ['bundle', 'other']) {
    run('index', '--model', path.join(FIX, name), '--catalog', path.join(FIX, 'shop/catalog.jsonl'), '--out', path.join(FIX, name, 'index'), '--quiet');
  }
  // The same bundle without an index, for the fallback.
  cpSync(path.join(FIX, 'bundle'), path.join(FIX, 'plain'), { recursive: true });
  rmSync(path.join(FIX, 'plain', 'index'), { recursive: true, force: true });
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

const catalogText = () => readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');

async function inBrowser(page, { model, index, catalog, route }) {
  if (route) await page.route(route.glob, route.handler);
  return page.evaluate(async ({ model, index, catalog, history }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu', ...(index ? { index } : {}) });
    const stats = await r.index(catalog);
    const recs = await r.recommend({ k: 10, history });
    const out = { indexItems: r.indexItems, note: r.note, stats, calls: (await r.stats()).embedCalls, recs };
    r.close();
    return out;
  }, { model, index, catalog, history: HISTORY });
}

test('with its index, the shelf embeds nothing and ranks as native recommend --index', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, server.url);
  const requests = [];
  page.on('request', (req) => requests.push(req.url()));
  const b = await inBrowser(page, { model: rel(path.join(FIX, 'bundle')) + '/', catalog: catalogText() });
  const n = catalogText().trim().split('\n').length;
  assert.equal(b.indexItems, n, b.note);
  assert.equal(b.stats.fromIndex, n);
  assert.equal(b.stats.embedded, 0);
  assert.equal(b.calls, 0, 'no embedding call for indexed items');
  const native = run('recommend', '--model', path.join(FIX, 'bundle'), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--index', path.join(FIX, 'bundle', 'index'), '--history', HISTORY.join(','), '--k', '10', '--json', '--cache', path.join(FIX, 'vectors'))
    .trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(b.recs.map((r) => r.id), native.map((r) => r.id));
  const diff = Math.max(...native.map((r, i) => Math.abs(r.score - b.recs[i].score)));
  console.log(`index: ${n} items from the index, 0 embedded; max |browser − native| score ${diff.toExponential(2)}`);
  assert.ok(diff < 1e-4, `${diff}`);
  for (const url of requests) assert.equal(new URL(url).origin, server.url, `request off the origin: ${url}`);
  assert.ok(requests.some((u) => u.endsWith('/index/vectors.safetensors')), 'the index was fetched');
});

test('a changed and a new catalogue item are the only ones embedded', { timeout: 300_000 }, async () => {
  const lines = catalogText().trim().split('\n').map((l) => JSON.parse(l));
  lines[4].title = `${lines[4].title} limited edition`;
  lines.push({ id: 'item-new', title: 'red coffee mug' });
  const catalog = lines.map((l) => JSON.stringify(l)).join('\n');
  const page = await openPage(browser, server.url);
  const b = await inBrowser(page, { model: rel(path.join(FIX, 'bundle')) + '/', catalog });
  assert.equal(b.stats.items, lines.length);
  assert.equal(b.stats.embedded, 2);
  assert.equal(b.stats.fromIndex, lines.length - 2);
  assert.equal(b.recs.length, 10);
});

test('a damaged index or one of another model is refused by name; the shelf embeds instead', { timeout: 300_000 }, async () => {
  const n = catalogText().trim().split('\n').length;
  const page = await openPage(browser, server.url);
  const damaged = await inBrowser(page, {
    model: rel(path.join(FIX, 'bundle')) + '/',
    catalog: catalogText(),
    route: {
      glob: '**/bundle/index/vectors.safetensors',
      handler: async (route) => {
        const response = await route.fetch();
        const body = Buffer.from(await response.body());
        body[body.length - 1] ^= 1;
        await route.fulfill({ response, body });
      },
    },
  });
  assert.equal(damaged.indexItems, 0);
  assert.match(damaged.note, /vectors\.safetensors.*sha256/);
  assert.equal(damaged.stats.embedded, n);
  assert.equal(damaged.recs.length, 10);
  const page2 = await openPage(browser, server.url);
  const foreign = await inBrowser(page2, { model: rel(path.join(FIX, 'plain')) + '/', index: rel(path.join(FIX, 'other', 'index')) + '/', catalog: catalogText() });
  assert.equal(foreign.indexItems, 0);
  assert.match(foreign.note, /built with model/);
  assert.equal(foreign.recs.length, 10);
  // No index at all: nothing to say, everything embedded.
  const page3 = await openPage(browser, server.url);
  const plain = await inBrowser(page3, { model: rel(path.join(FIX, 'plain')) + '/', catalog: catalogText() });
  assert.equal(plain.indexItems, 0);
  assert.equal(plain.note, undefined);
  assert.equal(plain.stats.fromIndex, 0);
});

// The shop size: 20 000 items (tests/tools/synthetic_catalog.py) indexed natively with
// the test bundle; `<ranklet-shelf>` on a page embeds none of them, embeds a changed and a new
// item alone, and is personal after three clicks (the clicked items' neighbours, not the
// popularity order).
test('a 20 000-item catalogue through <ranklet-shelf>: nothing embedded, a change and a new item alone, personal after three clicks', { timeout: 600_000 }, async () => {
  const dir = path.join(FIX, 'big');
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(FIX, 'plain'), path.join(dir, 'bundle'), { recursive: true });
  const catalog = path.join(dir, 'catalog.jsonl');
  execFileSync('python3', [path.join(ROOT, 'tests/tools/synthetic_catalog.py'), '20000', catalog, '--seed', '11']);
  run('index', '--model', path.join(dir, 'bundle'), '--catalog', catalog, '--out', path.join(dir, 'bundle', 'index'), '--quiet');
  const items = readFileSync(catalog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  items[123].title = `${items[123].title} limited edition`;
  items.push({ id: 'sku-new', title: 'red enamel coffee mug', category: ['Kitchen'], popularity: 1 });
  writeFileSync(path.join(dir, 'changed.jsonl'), items.map((it) => JSON.stringify(it)).join('\n') + '\n');
  const page = await openPage(browser, server.url);
  const shelf = async (catalogFile) => page.evaluate(async ({ model, catalog }) => {
    document.querySelector('ranklet-shelf')?.remove();
    await import('/www/ranklet-shelf.js');
    const el = document.createElement('ranklet-shelf');
    const ready = new Promise((resolve) => el.addEventListener('ranklet-ready', (e) => resolve(e.detail), { once: true }));
    el.setAttribute('backend', 'cpu');
    el.setAttribute('model', model);
    el.setAttribute('catalog', catalog);
    document.body.append(el);
    const detail = await ready;
    return { detail, calls: (await el.ranklet.stats()).embedCalls, cold: el.recommendations.map((r) => r.id) };
  }, { model: rel(path.join(dir, 'bundle')) + '/', catalog: catalogFile });
  const first = await shelf(rel(catalog));
  assert.equal(first.detail.source, 'model', JSON.stringify(first.detail));
  assert.equal(first.detail.items, 20000);
  assert.equal(first.detail.embedded, 0);
  assert.equal(first.calls, 0, 'no embedding call for indexed items');
  const changed = await shelf(rel(path.join(dir, 'changed.jsonl')));
  assert.equal(changed.detail.items, 20001);
  assert.equal(changed.detail.embedded, 2, 'the changed and the new item, nothing else');
  // Three clicks on items of one category: the shelf moves to that category.
  const picks = items.filter((it) => it.category?.[0] === 'Audio').slice(0, 3).map((it) => it.id);
  const warm = await page.evaluate(async (picks) => {
    const el = document.querySelector('ranklet-shelf');
    for (const id of picks) await el.record({ event: 'click', item: id });
    return el.recommendations.map((r) => ({ id: r.id, category: el.item(r.id)?.category?.[0], because: r.because, score: r.score }));
  }, picks);
  const audio = warm.filter((r) => r.category === 'Audio').length;
  const coldAudio = changed.cold.filter((id) => items.find((it) => it.id === id)?.category?.[0] === 'Audio').length;
  console.log(`20 000 items: 0 embedded on the first visit, 2 after a change; Audio on the shelf ${coldAudio}/8 cold, ${audio}/8 after 3 Audio clicks`);
  assert.ok(warm.every((r) => typeof r.score === 'number' && r.because.every((b) => picks.includes(b))), JSON.stringify(warm));
  assert.notDeepEqual(warm.map((r) => r.id), changed.cold, 'the shelf changed after the clicks');
  // Seeded fixtures: the tiny test model moves the shelf towards the clicked category.
  assert.ok(audio > coldAudio, `the shelf follows the clicks: ${audio}/8 Audio (cold ${coldAudio}/8)`);
});

// A partitioned item index (`ranklet index --partitions`) in headless Chromium, through the real
// wasm module: with every cell probed, recommend() equals the exact ranking over the whole
// index; at the default settings every recommend() requests the same number of shards whatever
// the history; a damaged shard is refused by name and skipped while the rest ranks; no request
// leaves the origin, and none carries the history (every URL and body is inspected);
// `<ranklet-shelf>` with no catalogue shows and names what the shards carry, over a reload too;
// an index of another model is refused by name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, readdirSync, cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

const BIN = process.env.RANKLET_BIN ?? path.join(ROOT, 'target/release/ranklet');
const FIX = path.join(ROOT, 'target/browser-fixtures-cells');
const rel = (p) => '/' + path.relative(ROOT, p).split(path.sep).join('/');
const run = (cmd, ...args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const SHARDS = 16;
let server, browser, ids;

before(async () => {
  rmSync(FIX, { recursive: true, force: true });
  run(BIN, 'fixture', '--out', FIX);
  run(BIN, 'train', '--data', path.join(FIX, 'shop'), '--text-model', path.join(FIX, 'encoder'), '--mode', 'inductive',
    '--out', path.join(FIX, 'bundle'), '--epochs', '2', '--hidden', '16', '--heads', '2', '--inner', '32', '--layers', '1',
    '--experts', '2', '--max-len', '10', '--batch-size', '16', '--quiet', '--restart', '--seed', '2020',
    '--checkpoint', path.join(FIX, 'ck'), '--cache', path.join(FIX, 'vectors'));
  const catalog = path.join(FIX, 'catalog.jsonl');
  run('python3', path.join(ROOT, 'tests/tools/synthetic_catalog.py'), '2000', catalog, '--seed', '7');
  // A visitor's history is made of items shown on this device (the shelf, the popular shard):
  // their rows stay here. Histories below use the popular shard's items (the 50 most popular,
  // ties in catalogue order), whose rows the first page load brings.
  const items = readFileSync(catalog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  ids = items.map((it, r) => [it.popularity, r, it.id]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 50).map((x) => x[2]);
  // The same rows twice: whole (the exact ranking) and cut into cells.
  run(BIN, 'index', '--model', path.join(FIX, 'bundle'), '--catalog', catalog, '--out', path.join(FIX, 'whole'), '--quiet');
  run(BIN, 'index', '--model', path.join(FIX, 'bundle'), '--catalog', catalog, '--out', path.join(FIX, 'cells'), '--quiet',
    '--partitions', String(SHARDS), '--min-shard', '40', '--nprobe', '2', '--decoys', '2', '--popular', '50');
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

// Loads the bundle with `index`, runs `histories` one after another; each answer with the
// shard requests it made.
async function visit(page, { index, histories, options = {} }) {
  return page.evaluate(async ({ model, index, histories, options, catalog }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu', index, ...options });
    const stats = await r.index(catalog);
    const answers = [];
    for (const history of histories) {
      const recs = await r.recommend({ k: 10, history });
      const s = await r.stats();
      answers.push({ recs, last: s.lastShards });
    }
    const out = { partitioned: r.partitioned, note: r.note, stats, answers, calls: (await r.stats()).embedCalls };
    r.close();
    return out;
  }, { model: rel(path.join(FIX, 'bundle')) + '/', index, histories, options, catalog: options.catalog ?? null });
}

const histories = () => [ids.slice(0, 3), [ids[10], ids[20], ids[49]], [ids[7]], [ids[30], ids[31], ids[42], ids[15], ids[3]]];

test('with every cell probed, recommend() is the exact ranking over the whole index', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, server.url);
  const cells = await visit(page, { index: rel(path.join(FIX, 'cells')) + '/', histories: histories(), options: { nprobe: SHARDS * 2, decoys: 0 } });
  assert.ok(cells.partitioned, cells.note);
  assert.equal(cells.calls, 0, 'no embedding on the device');
  const page2 = await openPage(browser, server.url);
  const catalog = readFileSync(path.join(FIX, 'catalog.jsonl'), 'utf8');
  const whole = await visit(page2, { index: rel(path.join(FIX, 'whole')) + '/', histories: histories(), options: { catalog } });
  assert.equal(whole.partitioned, null);
  let worst = 0;
  histories().forEach((_, h) => {
    const a = cells.answers[h].recs;
    const b = whole.answers[h].recs;
    assert.deepEqual(a.map((r) => r.id), b.map((r) => r.id), `history ${h}`);
    worst = Math.max(worst, ...a.map((r, i) => Math.abs(r.score - b[i].score)));
    // Each result carries the shelf data of its item.
    assert.ok(a.every((r) => r.item?.id === r.id && typeof r.item.title === 'string'));
  });
  console.log(`cells: all ${SHARDS} cells probed = exact ranking over 2000 items (max |score diff| ${worst.toExponential(2)})`);
  assert.ok(worst < 1e-4, `${worst}`);
});

test('every recommend() requests nprobe + decoys shards whatever the history; nothing leaves the origin or carries the history', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, server.url);
  const requests = [];
  page.on('request', (req) => requests.push({ url: req.url(), body: req.postData() }));
  const r = await visit(page, { index: rel(path.join(FIX, 'cells')) + '/', histories: [[], ...histories()] });
  const counts = r.answers.map((a) => a.last.requested);
  console.log(`cells: shard requests per recommend() ${JSON.stringify(counts)} (wanted ${JSON.stringify(r.answers.map((a) => a.last.wanted))})`);
  assert.deepEqual(counts, counts.map(() => 4));
  assert.equal(r.answers[0].recs.length, 10, 'the popular shard fills the shelf before any click');
  assert.ok(r.answers.slice(1).every((a) => a.recs.length === 10 && a.recs.every((x) => x.item)));
  const shardRequests = requests.filter((q) => q.url.includes('/cells/shards/') && !q.url.includes('popular'));
  assert.equal(shardRequests.length, 4 * counts.length);
  const history = new Set(histories().flat());
  for (const q of requests) {
    const url = new URL(q.url);
    assert.equal(url.origin, server.url, `request off the origin: ${q.url}`);
    assert.equal(url.search, '', `a query string: ${q.url}`);
    assert.equal(q.body ?? null, null, `a request body: ${q.url}`);
    for (const id of history) assert.ok(!q.url.includes(id), `${q.url} names ${id}`);
  }
  const files = new Set(readdirSync(path.join(FIX, 'cells', 'shards')));
  for (const q of shardRequests) assert.ok(files.has(path.basename(new URL(q.url).pathname)));
});

test('a damaged shard is refused by name and skipped; the rest ranks', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, server.url);
  let damaged = null;
  await page.route('**/cells/shards/0*.safetensors', async (route) => {
    const response = await route.fetch();
    const body = Buffer.from(await response.body());
    damaged = route.request().url();
    await route.fulfill({ response, body: body.subarray(0, body.length - 7) });
  });
  const r = await visit(page, { index: rel(path.join(FIX, 'cells')) + '/', histories: [ids.slice(0, 3)] });
  const last = r.answers[0].last;
  assert.ok(damaged, 'a shard was requested');
  assert.equal(last.failed.length, last.wanted, 'every wanted shard was damaged here');
  assert.match(last.failed[0].error, /shards\/\d{5}-[0-9a-f]{16}\.safetensors/);
  assert.match(last.failed[0].error, /truncated|bytes/);
  // The history and the popular shard still rank.
  assert.equal(r.answers[0].recs.length, 10);
});

// The bundle with the partitioned index in its own `index/` folder (what a shop deploys), and a
// copy whose manifest differs (another model, as far as the index can tell).
function bundleWithCells(name, edit = (m) => m) {
  const dir = path.join(FIX, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(path.join(FIX, 'bundle'), dir, { recursive: true });
  cpSync(path.join(FIX, 'cells'), path.join(dir, 'index'), { recursive: true });
  const manifest = path.join(dir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify(edit(JSON.parse(readFileSync(manifest, 'utf8'))), null, 2));
  return rel(dir) + '/';
}

// Puts a <ranklet-shelf model> (no catalog attribute) on the page; resolves to its first
// ranklet-ready or ranklet-error detail.
function mountShelf(page, model) {
  return page.evaluate(async (model) => {
    await import('/www/ranklet-shelf.js');
    const shelf = document.createElement('ranklet-shelf');
    shelf.id = 'shelf';
    const first = new Promise((resolve) => {
      shelf.addEventListener('ranklet-ready', (e) => resolve({ ready: e.detail }), { once: true });
      shelf.addEventListener('ranklet-error', (e) => resolve({ error: e.detail }), { once: true });
    });
    shelf.setAttribute('backend', 'cpu');
    shelf.setAttribute('model', model);
    document.body.append(shelf);
    return first;
  }, model);
}

// Clicks the shelf's first card (not already clicked); resolves to the redrawn shelf.
function clickFirstCard(page, skip) {
  return page.evaluate((skip) => new Promise((resolve) => {
    const shelf = document.getElementById('shelf');
    shelf.addEventListener('ranklet-update', (e) => resolve({ clicked: id, update: e.detail }), { once: true });
    const i = shelf.recommendations.findIndex((r) => !skip.includes(r.id));
    const id = shelf.recommendations[i].id;
    shelf.shadowRoot.querySelectorAll('button.card')[i].click();
  }), skip);
}

const shelfTexts = (page) => page.locator('ranklet-shelf').locator('.because').allTextContents();

test('<ranklet-shelf> with no catalogue over a partitioned index: popular first, personal after three clicks, names what it learned, also after a reload', { timeout: 300_000 }, async () => {
  const model = bundleWithCells('bundle-cells');
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  page.on('request', (req) => requests.push({ url: req.url(), body: req.postData() }));
  page.on('pageerror', (err) => console.log(`[page error] ${err.message}`));
  await page.goto(`${server.url}/www/blank.html`);
  const first = await mountShelf(page, model);
  assert.ok(first.ready, JSON.stringify(first));
  assert.equal(first.ready.partitioned, true);
  assert.equal(first.ready.source, 'model');
  const cold = await page.evaluate(() => document.getElementById('shelf').recommendations.map((r) => r.id));
  assert.equal(cold.length, 8);
  assert.ok(cold.every((id) => ids.includes(id)), 'before any click: the popular shard');
  const clicked = [];
  let update;
  for (let i = 0; i < 3; i++) {
    const step = await clickFirstCard(page, clicked);
    clicked.push(step.clicked);
    update = step.update;
  }
  assert.equal(update.source, 'model');
  assert.equal(update.recs.length, 8);
  assert.ok(update.recs.every((r) => !clicked.includes(r.id) && r.item?.id === r.id), 'new items, with their shelf data');
  assert.ok(update.recs.some((r) => !ids.includes(r.id)), 'items from the fetched shards, not only the popular shard');
  const titles = await page.evaluate((clicked) => clicked.map((id) => document.getElementById('shelf').item(id)?.title), clicked);
  assert.ok(titles.every((t) => typeof t === 'string' && t.length), `the clicked items are known: ${titles}`);
  const named = (texts) => texts.filter((t) => titles.some((title) => t.includes(title))).length;
  const warmTexts = await shelfTexts(page);
  // A card names a clicked item when removing that click lowers its score (the model's
  // attribution); a card no click raised says so.
  assert.ok(named(warmTexts) >= 1, `cards name clicked items: ${warmTexts}`);
  assert.equal(named(warmTexts) + warmTexts.filter((t) => t === 'Popular with other visitors').length, 8, `every card names a clicked item or says it is popular: ${warmTexts}`);

  // A later visit: no catalogue either; the history's rows and shelf data come from this device.
  await page.goto(`${server.url}/www/blank.html`);
  const again = await mountShelf(page, model);
  assert.ok(again.ready, JSON.stringify(again));
  const later = await page.evaluate(() => document.getElementById('shelf').recommendations);
  assert.deepEqual(later.map((r) => r.id), update.recs.map((r) => r.id), 'the same personal shelf after a reload');
  const laterTexts = await shelfTexts(page);
  assert.equal(named(laterTexts), named(warmTexts), `cards still name the clicked items: ${laterTexts}`);
  for (const q of requests) {
    const url = new URL(q.url);
    assert.equal(url.origin, server.url, `request off the origin: ${q.url}`);
    assert.equal(q.body ?? null, null, `a request body: ${q.url}`);
    for (const id of clicked) assert.ok(!q.url.includes(id), `${q.url} names ${id}`);
  }
  await context.close();
});

test('a partitioned index built with another model is refused by name; a shelf with no catalogue says so', { timeout: 300_000 }, async () => {
  const model = bundleWithCells('bundle-other', (m) => ({ ...m, name: `${m.name ?? 'bundle'}-retrained` }));
  const page = await openPage(browser, server.url);
  const loaded = await page.evaluate(async (model) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    const out = { partitioned: r.partitioned, note: r.note };
    r.close();
    return out;
  }, model);
  assert.equal(loaded.partitioned, null);
  assert.match(loaded.note, /built with model/);
  assert.match(loaded.note, /manifest\.json/);
  const shelf = await mountShelf(page, model);
  assert.equal(shelf.error?.stage, 'model', JSON.stringify(shelf));
  assert.match(shelf.error.message, /catalog attribute/);
  assert.match(shelf.error.message, /built with model/);
  const note = await page.locator('ranklet-shelf').locator('.note').textContent();
  assert.match(note, /unavailable.*built with model/);
});

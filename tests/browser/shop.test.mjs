// The demo shop and the <ranklet-shelf> widget as a visitor uses them, in headless Chromium:
// the real wasm module, the committed models/shop bundle (student encoder + recommender),
// real IndexedDB. Every request of every page is intercepted: none may leave 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser } from './helpers.mjs';

const FIX = path.join(ROOT, 'target/browser-fixtures/shop');
const rel = (p) => '/' + path.relative(ROOT, p).split(path.sep).join('/');
const FULL = existsSync(path.join(ROOT, 'www/catalog/ml-100k.json'));
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'";

let server, cspServer, browser;
const foreign = [];

before(async () => {
  rmSync(FIX, { recursive: true, force: true });
  mkdirSync(FIX, { recursive: true });
  // A catalogue with a hostile title, the most popular item so that it is on the shelf at once.
  const small = JSON.parse(readFileSync(path.join(ROOT, 'www/catalog/films-small.json'), 'utf8'));
  small.unshift({ id: 'evil', title: '<img src=x onerror=alert(1)>', category: 'Horror', genres: ['Horror'], year: 1999, popularity: 100000 });
  writeFileSync(path.join(FIX, 'xss.json'), JSON.stringify(small));
  // A corrupted copy of the bundle: one byte of the recommender's weights flipped.
  cpSync(path.join(ROOT, 'models/shop'), path.join(FIX, 'corrupt'), { recursive: true });
  const rec = path.join(FIX, 'corrupt/rec.safetensors');
  const bytes = readFileSync(rec);
  bytes[bytes.length - 7] ^= 0xff;
  writeFileSync(rec, bytes);
  server = await startServer();
  cspServer = await startServer(['--header', `Content-Security-Policy: ${CSP}`]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  cspServer?.stop();
  assert.deepEqual(foreign, [], 'requests left 127.0.0.1');
});

/** A fresh browser context (its own IndexedDB) whose every request is checked. */
async function visitor({ width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const requests = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    requests.push(url.href);
    if (url.hostname !== '127.0.0.1') { foreign.push(url.href); return route.abort(); }
    return route.continue();
  });
  const page = await context.newPage();
  const dialogs = [];
  const errors = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`[page] ${m.text()}`); });
  return { context, page, requests, dialogs, errors };
}

const shelfIds = (page) => page.evaluate(() => document.getElementById('shelf').recommendations.map((r) => r.id));
const waitReady = (page, source = 'model') => page.waitForFunction((s) => document.body.dataset.ready === s, source, { timeout: 240_000 });
// The shelf's state after the next update that follows `action`.
async function afterUpdate(page, action) {
  const before = await page.evaluate(() => (window.__updates = (window.__updates ?? 0)));
  await page.evaluate(() => {
    if (window.__counting) return;
    window.__counting = true;
    document.getElementById('shelf').addEventListener('ranklet-update', () => { window.__updates += 1; });
  });
  await action();
  await page.waitForFunction((n) => window.__updates > n, before, { timeout: 60_000 });
}

test('the shop learns a genre from three clicks, keeps the history over a reload without re-embedding, and forgets', { timeout: 900_000 }, async () => {
  const { context, page, errors, requests } = await visitor();
  await page.goto(`${server.url}/www/index.html?backend=cpu`);
  await waitReady(page);
  const catalog = await page.evaluate(() => document.getElementById('shelf').items);
  console.log(`shop: ${catalog.length} items (${FULL ? 'ml-100k' : 'built-in catalogue'}); panel: ${await page.textContent('#p-index')}`);
  assert.match(await page.textContent('#p-backend'), /^cpu/);
  const cold = await shelfIds(page);
  assert.equal(cold.length, 8);
  assert.equal(await page.locator('ranklet-shelf').locator('button.card').count(), 8, 'the shelf shows 8 cards');
  const becauses = await page.locator('ranklet-shelf').locator('.because').allTextContents();
  assert.ok(becauses.every((b) => b.trim()), `every card says why: ${becauses}`);

  // Three films of one genre (that genre only), clicked in the grid filtered by the genre's chip.
  const genre = 'Horror';
  const byId = new Map(catalog.map((it) => [it.id, it]));
  const genreRanks = (ids) => ids.map((id, r) => (byId.get(id).genres.includes(genre) ? r : null)).filter((r) => r !== null);
  await page.getByRole('button', { name: genre, exact: true }).click();
  const gridIds = await page.evaluate(() => Array.from(document.querySelectorAll('#grid li.tile'), (t) => t.dataset.id));
  const pure = gridIds.filter((id) => byId.get(id).genres.join() === genre).slice(0, 3);
  assert.equal(pure.length, 3, `three films that are ${genre} only`);
  for (const id of pure) {
    await afterUpdate(page, () => page.locator(`#grid li.tile[data-id="${id}"] button.open`).click());
  }
  const clicked = await page.evaluate(() => Array.from(document.querySelectorAll('#grid li.tile.viewed'), (t) => t.dataset.id));
  assert.equal(clicked.length, 3);
  const warm = await shelfIds(page);
  const recs = await page.evaluate(() => document.getElementById('shelf').recommendations);
  console.log(`${genre} ranks on the shelf: cold ${JSON.stringify(genreRanks(cold))}, after 3 ${genre} clicks ${JSON.stringify(genreRanks(warm))}`);
  assert.ok(genreRanks(warm).length > genreRanks(cold).length, `${genre} moves up: ${genreRanks(cold)} → ${genreRanks(warm)}`);
  assert.ok(genreRanks(warm)[0] < (genreRanks(cold)[0] ?? Infinity), `the best ${genre} film ranks higher`);
  for (const r of recs) {
    assert.ok(!clicked.includes(r.id), 'clicked films are not recommended again');
    assert.ok(r.because.every((b) => clicked.includes(b)), `"because" names clicked films: ${JSON.stringify(r)}`);
    assert.deepEqual(r.reasons.map((x) => [x.id, x.event]), r.because.map((b) => [b, 'click']), 'each reason is the click it was');
  }
  // Cards name the clicks whose removal lowers their score (the model's attribution); the
  // others say that no click raised them.
  const texts = await page.locator('ranklet-shelf').locator('.because').allTextContents();
  assert.ok(texts.some((t) => /^Because you viewed /.test(t)), texts.join(' | '));
  assert.ok(texts.every((t) => /^Because you viewed /.test(t) || t === 'Popular with other visitors'), texts.join(' | '));
  assert.equal(await page.textContent('#p-history'), '3 events');

  // Reload: the history is still there and no item is embedded again.
  await page.reload();
  await waitReady(page);
  const stats = await page.evaluate(() => document.getElementById('shelf').ranklet.stats());
  assert.equal(stats.embedCalls, 0, 'no embedding call after a reload');
  assert.match(await page.textContent('#p-index'), new RegExp(`: 0 embedded now, ${catalog.length} from this device's cache`));
  assert.equal(await page.textContent('#p-history'), '3 events');
  assert.deepEqual(await shelfIds(page), warm, 'same shelf after the reload');

  // Screenshots for the README (desktop here, narrow below).
  mkdirSync(path.join(ROOT, 'reports'), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, 'reports/demo-desktop.png') });
  const narrow = await context.newPage();
  await narrow.setViewportSize({ width: 390, height: 844 });
  await narrow.goto(`${server.url}/www/index.html?backend=cpu`);
  await waitReady(narrow);
  await narrow.screenshot({ path: path.join(ROOT, 'reports/demo-narrow.png'), fullPage: false });
  await narrow.close();

  // "Not interested" on the first recommendation (found with the search box) takes it off the shelf.
  const top = byId.get(warm[0]);
  await page.getByRole('button', { name: 'All', exact: true }).click();
  await afterUpdate(page, () => page.fill('#search', top.display ?? top.title)); // the search is recorded
  const ranking = () => page.evaluate(() => document.getElementById('shelf').ranklet.recommend({ k: 100 }).then((rs) => rs.map((r) => r.id)));
  // Its neighbours: the films with exactly its genres.
  const neighbours = catalog.filter((it) => it.id !== top.id && it.genres.join() === top.genres.join()).map((it) => it.id);
  const meanRank = (ids) => neighbours.reduce((sum, id) => sum + (ids.includes(id) ? ids.indexOf(id) : 100), 0) / neighbours.length;
  const beforeDislike = await ranking();
  await afterUpdate(page, () => page.locator(`#grid li.tile[data-id="${top.id}"] button.no`).click());
  const afterDislike = await ranking();
  const disliked = await shelfIds(page);
  assert.ok(!disliked.includes(top.id), `${top.title} left the shelf`);
  assert.ok(!afterDislike.includes(top.id), `${top.title} left the ranking`);
  console.log(`not interested in ${top.title} [${top.genres}]: its ${neighbours.length} same-genre films' mean rank ${meanRank(beforeDislike).toFixed(1)} → ${meanRank(afterDislike).toFixed(1)} (of 100)`);
  assert.ok(meanRank(afterDislike) > meanRank(beforeDislike), 'its neighbours move down');
  assert.equal(disliked.length, 8);
  assert.equal(await page.textContent('#p-history'), '5 events');
  const kinds = (await page.evaluate(() => document.getElementById('shelf').history())).map((e) => e.event);
  assert.deepEqual(kinds, ['click', 'click', 'click', 'search', 'dislike']);

  // "Your taste": Horror leads the persona; removing it takes Horror off the shelf.
  const taste = await page.locator('#taste .taste-name').allTextContents();
  console.log(`your taste: ${taste.join(', ')}`);
  assert.equal(taste[0], genre, `the persona's top entry is ${genre}`);
  await afterUpdate(page, () => page.getByRole('button', { name: `Remove ${genre} from your taste` }).click());
  const muted = await shelfIds(page);
  assert.equal(muted.length, 8);
  assert.deepEqual(genreRanks(muted), [], `no ${genre} on the shelf once removed from the taste`);
  assert.ok(!(await page.locator('#taste .taste-name').allTextContents()).includes(genre));
  assert.match(await page.textContent('#taste-muted'), new RegExp(`Hidden: ${genre}`));

  // "Forget me": the history is gone and the shelf is the cold-start one again.
  await afterUpdate(page, () => page.click('#forget'));
  assert.equal(await page.textContent('#p-history'), '0 events');
  assert.deepEqual(await shelfIds(page), cold, 'cold-start shelf after Forget me');
  assert.equal((await page.evaluate(() => document.getElementById('shelf').history())).length, 0);
  assert.deepEqual(await page.evaluate(() => document.getElementById('shelf').muted), [], 'Forget me also forgets the removed tastes');
  assert.deepEqual(errors, []);
  assert.ok(requests.some((u) => u.endsWith('/models/shop/rec.safetensors')));
  // The CPU backend runs the CPU-only module: the WebGPU one is never downloaded.
  assert.ok(requests.some((u) => u.endsWith('/www/pkg/ranklet_bg.wasm')));
  assert.deepEqual(requests.filter((u) => u.includes('/pkg-webgpu/')), []);
  await context.close();
});

test('a search with no click moves the shelf: "space" brings science fiction up, and says why', { timeout: 300_000 }, async () => {
  const { context, page, errors } = await visitor();
  await page.goto(`${server.url}/www/index.html?backend=cpu`);
  await waitReady(page);
  const catalog = await page.evaluate(() => document.getElementById('shelf').items);
  const byId = new Map(catalog.map((it) => [it.id, it]));
  const scifi = (ids) => ids.filter((id) => byId.get(id).genres.includes('Sci-Fi')).length;
  const cold = await shelfIds(page);
  await afterUpdate(page, () => page.fill('#search', 'space'));
  const after = await shelfIds(page);
  const history = await page.evaluate(() => document.getElementById('shelf').history());
  console.log(`search "space": Sci-Fi on the shelf ${scifi(cold)} → ${scifi(after)} of 8`);
  assert.deepEqual(history.map((e) => [e.event, e.query]), [['search', 'space']], 'the search is the only event');
  assert.notDeepEqual(after, cold, 'the shelf changed');
  assert.ok(scifi(after) > scifi(cold), `science fiction moves up: ${scifi(cold)} → ${scifi(after)}`);
  const becauses = await page.locator('ranklet-shelf').locator('.because').allTextContents();
  assert.equal(becauses.length, 8);
  assert.ok(becauses.every((b) => b.trim()), `every card says why: ${becauses}`);
  assert.ok(becauses.some((b) => b.includes('searched “space”')), becauses.join(' | '));
  assert.deepEqual(errors, []);
  await context.close();
});

test('item texts render as text: a title that is HTML fires no script', { timeout: 300_000 }, async () => {
  const { context, page, dialogs, errors } = await visitor();
  await page.goto(`${server.url}/www/index.html?backend=cpu&catalog=${rel(path.join(FIX, 'xss.json'))}`);
  await waitReady(page);
  const title = '<img src=x onerror=alert(1)>';
  assert.equal(await page.locator('#grid .title').first().textContent(), title);
  assert.equal(await page.locator('ranklet-shelf').locator('.title').first().textContent(), title);
  await page.locator('#grid li.tile').first().locator('button.open').click();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was created');
  assert.equal(await page.evaluate(() => document.getElementById('shelf').shadowRoot.querySelectorAll('img').length), 0);
  assert.deepEqual(dialogs, [], 'no dialog fired');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a corrupted bundle: the shelf says so, falls back to popularity, and the shop still works', { timeout: 300_000 }, async () => {
  const { context, page, errors } = await visitor();
  const modelErrors = [];
  await page.exposeFunction('reportError', (d) => modelErrors.push(d));
  await page.addInitScript(() => document.addEventListener('ranklet-error', (e) => window.reportError(e.detail)));
  await page.goto(`${server.url}/www/index.html?backend=cpu&catalog=/www/catalog/films-small.json&model=${rel(path.join(FIX, 'corrupt'))}/`);
  await waitReady(page, 'popularity');
  const note = await page.locator('ranklet-shelf').locator('.note').textContent();
  console.log(`corrupt bundle: ${note}`);
  assert.match(note, /rec\.safetensors/, 'the message names the file');
  assert.match(note, /sha256|checksum/i);
  assert.equal(modelErrors.length, 1);
  assert.equal(modelErrors[0].stage, 'model');
  assert.match(await page.textContent('#p-backend'), /popularity fallback/);
  // The shop works: the shelf is there, and a click changes it (recent genres).
  const before = await shelfIds(page);
  assert.equal(before.length, 8);
  await afterUpdate(page, () => page.getByRole('button', { name: 'Western', exact: true }).click().then(() => page.locator('#grid li.tile').first().locator('button.open').click()));
  const afterIds = await shelfIds(page);
  assert.notDeepEqual(afterIds, before);
  const items = await page.evaluate(() => document.getElementById('shelf').items);
  assert.ok(items.find((it) => it.id === afterIds[0]).genres.includes('Western'), 'a Western leads the fallback shelf');
  assert.equal(await page.textContent('#p-history'), '1 event');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a catalogue on another origin is never fetched, and a missing one is named, not "loading…" for ever', { timeout: 120_000 }, async () => {
  const { context, page, requests, errors } = await visitor();
  await page.goto(`${server.url}/www/index.html?backend=cpu&catalog=https://catalog.example.org/evil.json`);
  await page.waitForFunction(() => !document.getElementById('grid-empty').hidden);
  const said = await page.textContent('#grid-empty');
  console.log(`foreign catalogue: ${said}`);
  assert.match(said, /another origin/);
  assert.ok(requests.every((u) => new URL(u).hostname === '127.0.0.1'), `a request left the origin: ${requests.join(' ')}`);
  assert.notEqual(await page.textContent('#p-backend'), 'loading…');
  const page2 = await context.newPage();
  await page2.goto(`${server.url}/www/index.html?backend=cpu&catalog=/www/catalog/no-such-catalogue.json`);
  await page2.waitForFunction(() => !document.getElementById('grid-empty').hidden);
  assert.match(await page2.textContent('#grid-empty'), /no-such-catalogue\.json.*HTTP 404/);
  assert.match(await page2.textContent('#p-backend'), /not started/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('the embed example works under a strict Content-Security-Policy', { timeout: 300_000 }, async () => {
  const { context, page, errors } = await visitor();
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const response = await page.goto(`${cspServer.url}/www/embed-example.html`);
  assert.equal(response.headers()['content-security-policy'], CSP);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 240_000 });
  const ready = await page.evaluate(() => document.getElementById('shelf').source);
  assert.equal(ready, 'model', 'the model runs under the CSP');
  const cards = page.locator('ranklet-shelf').locator('button.card');
  assert.equal(await cards.count(), 6);
  // Styles came through (adopted stylesheet + custom properties), not blocked.
  const radius = await cards.first().evaluate((el) => getComputedStyle(el).borderTopLeftRadius);
  assert.equal(radius, '2px', 'the host theme (--ranklet-radius) applies');
  const clicked = await page.evaluate(async () => {
    const shelf = document.getElementById('shelf');
    const seen = new Promise((resolve) => shelf.addEventListener('ranklet-click', (e) => resolve(e.detail.id), { once: true }));
    const updated = new Promise((resolve) => shelf.addEventListener('ranklet-update', (e) => resolve(e.detail), { once: true }));
    shelf.shadowRoot.querySelector('button.card').click();
    const id = await seen;
    const u = await updated;
    return { id, source: u.source, recs: u.recs.map((r) => r.id), history: (await shelf.history()).map((e) => e.item) };
  });
  assert.deepEqual(clicked.history, [clicked.id], 'the click is recorded');
  assert.equal(clicked.source, 'model');
  assert.ok(!clicked.recs.includes(clicked.id));
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  assert.deepEqual(errors, []);
  await context.close();
});

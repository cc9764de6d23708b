// The recommender in headless Chromium, in a Web Worker, through the real wasm module, against
// the native `ranklet recommend` on the same bundle, catalog and history: the scores agree
// within 1e-4 (CPU backend, and WebGPU where an adapter exists). The bundle is trained here,
// natively, on the deterministic fixtures (tiny random encoder, synthetic shop).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

const BIN = process.env.RANKLET_BIN ?? path.join(ROOT, 'target/release/ranklet');
const FIX = path.join(ROOT, 'target/browser-fixtures');
const rel = (p) => '/' + path.relative(ROOT, p).split(path.sep).join('/');
const run = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

let server, browser;
const HISTORY = ['item-3', 'item-17', 'item-8', 'item-21'];
before(async () => {
  rmSync(FIX, { recursive: true, force: true });
  run('fixture', '--out', FIX);
  for (const mode of ['transductive', 'inductive']) {
    run('train', '--data', path.join(FIX, 'shop'), '--text-model', path.join(FIX, 'encoder'), '--mode', mode,
      '--out', path.join(FIX, `bundle-${mode}`), '--epochs', '3', '--hidden', '16', '--heads', '2', '--inner', '32',
      '--layers', '1', '--experts', '2', '--max-len', '10', '--batch-size', '16', '--quiet', '--restart',
      '--checkpoint', path.join(FIX, `ck-${mode}`), '--cache', path.join(FIX, 'vectors'));
  }
  // Every history signal: behaviour types, DUMN (2 memory slots), CLSD (2 activity groups),
  // scene context (the fixtures' events all fall in hour 22 UTC), the persona (the catalogue's
  // genres: the synthetic shop's topics).
  run('train', '--data', path.join(FIX, 'shop'), '--text-model', path.join(FIX, 'encoder'), '--mode', 'inductive',
    '--out', path.join(FIX, 'bundle-typed'), '--epochs', '3', '--hidden', '16', '--heads', '2', '--inner', '32',
    '--layers', '1', '--experts', '2', '--max-len', '10', '--batch-size', '16', '--quiet', '--restart',
    '--event-types', '--memory-slots', '2', '--clsd-groups', '2', '--scene-context', '--persona',
    '--checkpoint', path.join(FIX, 'ck-typed'), '--cache', path.join(FIX, 'vectors'));
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

function native(mode) {
  const out = run('recommend', '--model', path.join(FIX, `bundle-${mode}`), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--history', HISTORY.join(','), '--k', '10', '--json', '--cache', path.join(FIX, 'vectors'));
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

async function browserRecs(backend, mode) {
  const page = await openPage(browser, server.url);
  const catalog = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');
  return page.evaluate(async ({ model, catalog, history, backend }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend });
    const n = (await r.index(catalog)).items;
    const recs = await r.recommend({ k: 10, history });
    const out = { backend: r.backend, reason: r.backendReason, mode: r.mode, n, recs };
    r.close();
    return out;
  }, { model: rel(path.join(FIX, `bundle-${mode}`)) + '/', catalog, history: HISTORY, backend });
}

function compare(nativeRecs, browser, label) {
  const theirs = new Map(browser.recs.map((r) => [r.id, r]));
  let maxDiff = 0;
  for (const r of nativeRecs) {
    const b = theirs.get(r.id);
    assert.ok(b, `${label}: native recommends ${r.id}, the browser does not: ${JSON.stringify(browser.recs)}`);
    maxDiff = Math.max(maxDiff, Math.abs(b.score - r.score));
    assert.deepEqual(new Set(b.because), new Set(r.because), `${label}: because of ${r.id}`);
  }
  assert.equal(browser.recs.length, nativeRecs.length);
  for (const r of browser.recs) assert.ok(!HISTORY.includes(r.id), `${label}: history item ${r.id} recommended`);
  console.log(`${label}: ${browser.backend} (${browser.reason}); ${browser.n} items; max |browser − native| score ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff < 1e-4, `${label}: max score difference ${maxDiff}`);
}

for (const mode of ['transductive', 'inductive']) {
  test(`${mode}: browser CPU recommendations equal the native ones within 1e-4`, { timeout: 300_000 }, async () => {
    const b = await browserRecs('cpu', mode);
    assert.equal(b.backend, 'cpu');
    assert.equal(b.mode, mode);
    compare(native(mode), b, `${mode} cpu`);
  });
}

test('items the model never trained on: placed among the trained ones by the bundle\'s neighbour mix and lifted by the catalogue\'s popularity, in the browser as natively, and only they move', { timeout: 300_000 }, async () => {
  // The shop's catalogue and five items it never trained on (new ids; texts near five trained
  // ones), with popularity figures: the new items' from none to the catalogue's largest.
  const lines = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8').trim().split('\n')
    .map((l, k) => JSON.stringify({ ...JSON.parse(l), popularity: (k * 37) % 400 }));
  const newPopularity = [undefined, 0, 5, 50, 400];
  const extra = lines.slice(0, 5).map((l, k) => JSON.stringify({ ...JSON.parse(l), id: `new-${k}`, title: `${JSON.parse(l).title} new edition`, popularity: newPopularity[k] }));
  const catalogNew = path.join(FIX, 'shop/catalog-new.jsonl');
  writeFileSync(catalogNew, [...lines, ...extra].join('\n') + '\n');
  const n = lines.length + extra.length;
  // The same bundle with the mix turned off.
  const bundle = path.join(FIX, 'bundle-inductive');
  const unmixed = path.join(FIX, 'bundle-inductive-unmixed');
  rmSync(unmixed, { recursive: true, force: true });
  cpSync(bundle, unmixed, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(unmixed, 'manifest.json'), 'utf8'));
  manifest.recommender.config.new_items = { mix: { own: 1, neighbours: 0 }, untrained: [] };
  writeFileSync(path.join(unmixed, 'manifest.json'), JSON.stringify(manifest));
  const scores = (model) => new Map(run('recommend', '--model', model, '--catalog', catalogNew, '--history', HISTORY.join(','),
    '--k', String(n), '--json', '--cache', path.join(FIX, 'vectors')).trim().split('\n').map((l) => JSON.parse(l)).map((r) => [r.id, r.score]));
  const mixed = scores(bundle);
  const plain = scores(unmixed);
  let moved = 0;
  for (const [id, s] of plain) {
    if (id.startsWith('new-')) moved = Math.max(moved, Math.abs(mixed.get(id) - s));
    else assert.ok(Math.abs(mixed.get(id) - s) < 1e-6, `trained item ${id} moved: ${mixed.get(id)} vs ${s}`);
  }
  assert.ok(moved > 1e-3, `the mix moves the new items (largest change ${moved})`);
  // The same bundle without the popularity lift: only the new items' scores change, each by
  // more the more popular it is (none and 0 alike: the offset alone).
  const unlifted = path.join(FIX, 'bundle-inductive-unlifted');
  rmSync(unlifted, { recursive: true, force: true });
  cpSync(bundle, unlifted, { recursive: true });
  const unliftedManifest = JSON.parse(readFileSync(path.join(unlifted, 'manifest.json'), 'utf8'));
  unliftedManifest.recommender.config.new_items = { ...unliftedManifest.recommender.config.new_items, popularity: { offset: 0, weight: 0 } };
  writeFileSync(path.join(unlifted, 'manifest.json'), JSON.stringify(unliftedManifest));
  const flat = scores(unlifted);
  const lift = [0, 1, 2, 3, 4].map((k) => mixed.get(`new-${k}`) - flat.get(`new-${k}`));
  for (const [id, s] of flat) if (!id.startsWith('new-')) assert.ok(Math.abs(mixed.get(id) - s) < 1e-6, `trained item ${id} lifted`);
  assert.ok(Math.abs(lift[0] - lift[1]) < 1e-5 && lift[1] < lift[2] && lift[2] < lift[3] && lift[3] < lift[4], `lifts ${lift}`);
  const page = await openPage(browser, server.url);
  const theirs = await page.evaluate(async ({ model, catalog, history, n }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    await r.index(catalog);
    const recs = await r.recommend({ k: n, history });
    r.close();
    return recs;
  }, { model: rel(bundle) + '/', catalog: readFileSync(catalogNew, 'utf8'), history: HISTORY, n });
  assert.equal(theirs.length, mixed.size);
  const diff = Math.max(...theirs.map((r) => Math.abs(r.score - mixed.get(r.id))));
  console.log(`new items: mixed by ${moved.toExponential(2)} at most, lifted by ${lift.map((x) => x.toFixed(3))}; max |browser − native| score ${diff.toExponential(2)}`);
  assert.ok(diff < 1e-4, `${diff}`);
});

test('<ranklet-shelf only="new">: the items the model never trained on, in the model\'s order among them (as native), "New arrival" before any history', { timeout: 300_000 }, async () => {
  const lines = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8').trim().split('\n');
  const extra = lines.slice(0, 5).map((l, k) => JSON.stringify({ ...JSON.parse(l), id: `arrival-${k}`, title: `${JSON.parse(l).title} (new)` }));
  const catalogNew = path.join(FIX, 'shop/catalog-arrivals.jsonl');
  writeFileSync(catalogNew, [...lines, ...extra].join('\n') + '\n');
  const n = lines.length + extra.length;
  const bundle = path.join(FIX, 'bundle-inductive');
  // Native: the whole catalogue ranked after the history, then only the new items kept.
  const nativeOrder = run('recommend', '--model', bundle, '--catalog', catalogNew, '--history', HISTORY.join(','),
    '--k', String(n), '--json', '--cache', path.join(FIX, 'vectors')).trim().split('\n').map((l) => JSON.parse(l).id)
    .filter((id) => id.startsWith('arrival-'));
  assert.equal(nativeOrder.length, 5);
  const page = await openPage(browser, server.url);
  const shelf = await page.evaluate(async ({ model, catalog, plainCatalog, history }) => {
    const { addShelf } = await import('/tests/browser/shelf_page.mjs');
    const make = (catalogUrl) => addShelf({ backend: 'cpu', k: '10', only: 'new', model, catalog: catalogUrl });
    const texts = (el) => [...el.shadowRoot.querySelectorAll('.because')].map((b) => b.textContent);
    const el = await make(catalog);
    const newIds = el.ranklet.newIds;
    const before = { ids: el.recommendations.map((r) => r.id), because: texts(el) };
    for (const item of history) await el.record({ event: 'click', item });
    const after = el.recommendations.map((r) => r.id);
    const redrawn = new Promise((resolve) => el.addEventListener('ranklet-update', resolve, { once: true }));
    el.removeAttribute('only');
    await redrawn;
    const whole = el.recommendations.map((r) => r.id);
    // A catalogue with nothing new: an empty new-arrivals shelf that says so.
    const none = await make(plainCatalog);
    return { newIds, before, after, whole, empty: none.recommendations.length, emptyText: none.shadowRoot.querySelector('.empty')?.textContent };
  }, { model: rel(bundle) + '/', catalog: rel(catalogNew), plainCatalog: rel(path.join(FIX, 'shop/catalog.jsonl')), history: HISTORY });
  assert.deepEqual(shelf.newIds, extra.map((l) => JSON.parse(l).id), 'the bundle names the catalogue items it never trained on');
  assert.deepEqual(new Set(shelf.before.ids), new Set(shelf.newIds), 'before any history: the new items');
  assert.ok(shelf.before.because.every((t) => t === 'New arrival'), JSON.stringify(shelf.before.because));
  assert.deepEqual(shelf.after, nativeOrder, 'after the history: the model\'s order among the new items, as native');
  assert.ok(shelf.whole.some((id) => !id.startsWith('arrival-')), `without the attribute: the whole catalogue ${shelf.whole}`);
  assert.equal(shelf.empty, 0);
  assert.equal(shelf.emptyText, 'No new arrivals.');
});

test('calibrated re-ranking: the browser equals native recommend --calibrate, and it changes the list', { timeout: 300_000 }, async () => {
  const nativeRecs = (lambda) => run('recommend', '--model', path.join(FIX, 'bundle-inductive'), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--history', HISTORY.join(','), '--k', '10', '--json', '--cache', path.join(FIX, 'vectors'), '--calibrate', String(lambda))
    .trim().split('\n').map((l) => JSON.parse(l));
  const page = await openPage(browser, server.url);
  const catalog = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');
  const theirs = await page.evaluate(async ({ model, catalog, history }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    await r.index(catalog);
    const out = { plain: await r.recommend({ k: 10, history }), calibrated: await r.recommend({ k: 10, history, calibrate: 0.9 }) };
    r.close();
    return out;
  }, { model: rel(path.join(FIX, 'bundle-inductive')) + '/', catalog, history: HISTORY });
  const ours = nativeRecs(0.9);
  assert.deepEqual(theirs.calibrated.map((r) => r.id), ours.map((r) => r.id), 'same calibrated list');
  const diff = Math.max(...ours.map((r, i) => Math.abs(r.score - theirs.calibrated[i].score)));
  console.log(`calibrated (λ 0.9): max |browser − native| score ${diff.toExponential(2)}`);
  assert.ok(diff < 1e-4, `${diff}`);
  assert.notDeepEqual(theirs.calibrated.map((r) => r.id), theirs.plain.map((r) => r.id), 'calibration changes the list');
  assert.deepEqual(theirs.plain.map((r) => r.id), nativeRecs(0).map((r) => r.id));
});

test('<ranklet-shelf calibrate> shows the calibrated list of native recommend --calibrate (0.1 by default, 0 the model order)', { timeout: 300_000 }, async () => {
  const page = await openPage(browser, server.url);
  const shelf = await page.evaluate(async ({ model, catalog, history }) => {
    const { addShelf } = await import('/tests/browser/shelf_page.mjs');
    const el = await addShelf({ backend: 'cpu', k: '10', model, catalog });
    for (const item of history) await el.record({ event: 'click', item });
    const byDefault = el.recommendations.map((r) => r.id);
    const set = async (value) => {
      const redrawn = new Promise((resolve) => el.addEventListener('ranklet-update', resolve, { once: true }));
      el.setAttribute('calibrate', value);
      await redrawn;
      return el.recommendations.map((r) => r.id);
    };
    return { byDefault, calibrated: await set('0.9'), plain: await set('0') };
  }, { model: rel(path.join(FIX, 'bundle-inductive')) + '/', catalog: rel(path.join(FIX, 'shop/catalog.jsonl')), history: HISTORY });
  const native = (lambda) => run('recommend', '--model', path.join(FIX, 'bundle-inductive'), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--history', HISTORY.join(','), '--k', '10', '--json', '--cache', path.join(FIX, 'vectors'), '--calibrate', String(lambda))
    .trim().split('\n').map((l) => JSON.parse(l).id);
  assert.deepEqual(shelf.byDefault, native(0.1), 'without the attribute: calibrated at 0.1, the weight chosen on validation');
  assert.deepEqual(shelf.calibrated, native(0.9), 'calibrate="0.9": the calibrated list');
  assert.deepEqual(shelf.plain, native(0), 'calibrate="0": the model order');
  assert.notDeepEqual(native(0.1), native(0), 'the fixture tells the default weight from none');
});

test('a history longer than the window: the browser reads the same events as native --history-select relevant', { timeout: 300_000 }, async () => {
  // 16 events, a window of 10 (the fixtures' --max-len): the newest 4 plus the 6 older events
  // nearest to them in text space.
  const long = ['item-1', 'item-9', 'item-14', 'item-2', 'item-22', 'item-30', 'item-7', 'item-11', 'item-25', 'item-4',
    'item-33', 'item-18', 'item-3', 'item-17', 'item-8', 'item-21'];
  const nativeRecs = (select) => run('recommend', '--model', path.join(FIX, 'bundle-inductive'), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--history', long.join(','), '--k', '10', '--json', '--cache', path.join(FIX, 'vectors'), '--history-select', select, '--recent', '4')
    .trim().split('\n').map((l) => JSON.parse(l));
  const page = await openPage(browser, server.url);
  const catalog = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');
  const theirs = await page.evaluate(async ({ model, catalog, history }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const out = {};
    for (const historySelect of ['relevant', 'last']) {
      const r = await Ranklet.load({ model, backend: 'cpu', historySelect, recent: 4 });
      await r.index(catalog);
      out[historySelect] = await r.recommend({ k: 10, history });
      r.close();
    }
    return out;
  }, { model: rel(path.join(FIX, 'bundle-inductive')) + '/', catalog, history: long });
  for (const select of ['relevant', 'last']) {
    const ours = nativeRecs(select);
    assert.deepEqual(theirs[select].map((r) => r.id), ours.map((r) => r.id), `${select}: same items`);
    const diff = Math.max(...ours.map((r, i) => Math.abs(r.score - theirs[select][i].score)));
    console.log(`long history, ${select}: max |browser − native| score ${diff.toExponential(2)}`);
    assert.ok(diff < 1e-4, `${select}: ${diff}`);
  }
  assert.notDeepEqual(theirs.relevant.map((r) => r.score), theirs.last.map((r) => r.score), 'the selection changes what the encoder reads');
});

test('typed history (like, cart, dislike) and scene context through event types, DUMN, CLSD, LARR and the persona: the browser equals native within 1e-4', { timeout: 300_000 }, async () => {
  const manifest = JSON.parse(readFileSync(path.join(FIX, 'bundle-typed/manifest.json'), 'utf8'));
  const signals = manifest.recommender.config.signals;
  assert.ok(signals.kinds && signals.memory_slots === 2 && signals.clsd?.mean?.length >= 1 && signals.context
    && signals.context_vocabulary?.page?.includes('product') && signals.persona?.facets?.includes('coffee'), JSON.stringify(signals));
  const typed = [['item-3', 'like'], ['item-17', 'click'], ['item-8', 'dislike'], ['item-21', 'cart'], ['item-5', 'click'], ['item-30', 'view']];
  const scene = ['--hour', '22', '--page', 'product', '--device-class', 'mobile'];
  const nativeRecs = (kinds, context = scene) => run('recommend', '--model', path.join(FIX, 'bundle-typed'), '--catalog', path.join(FIX, 'shop/catalog.jsonl'),
    '--history', typed.map(([id]) => id).join(','), ...(kinds ? ['--kinds', kinds.join(',')] : []), ...context,
    '--k', '10', '--json', '--cache', path.join(FIX, 'vectors')).trim().split('\n').map((l) => JSON.parse(l));
  const ours = nativeRecs(typed.map(([, e]) => e));
  const asClicks = nativeRecs(null);
  const noScene = nativeRecs(typed.map(([, e]) => e), []);
  const sceneScores = new Map(noScene.map((r) => [r.id, r.score]));
  assert.ok(ours.some((r) => !sceneScores.has(r.id) || Math.abs(sceneScores.get(r.id) - r.score) > 1e-4), 'the scene changes the scores');
  const page = await openPage(browser, server.url);
  const catalog = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');
  // The CPU backend always; WebGPU too where an adapter exists (the memory's cumulative sums
  // and the gate run as WGSL kernels there).
  const runs = await page.evaluate(async ({ model, catalog, history }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const out = {};
    const backends = ['cpu'];
    if (navigator.gpu && (await navigator.gpu.requestAdapter())) backends.push('webgpu');
    for (const backend of backends) {
      const r = await Ranklet.load({ model, backend });
      await r.index(catalog);
      const context = { hour: 22, page: 'product', device: 'mobile' };
      out[backend] = { got: r.backend, recs: await r.recommend({ k: 10, history: history.map(([item, event]) => ({ item, event })), context }) };
      if (backend === 'cpu') {
        try { await r.recommend({ k: 10, history: ['item-3'], context: { page: 'checkout' } }); out.badPage = 'accepted'; } catch (err) { out.badPage = err.message; }
        // Removing persona entries (the "your taste" panel) changes what the model reads.
        out.personaFacets = r.personaFacets;
        out.muted = await r.recommend({ k: 10, history: history.map(([item, event]) => ({ item, event })), context, muted: r.personaFacets.slice(0, 2) });
        out.persona = await r.persona({ history: history.map(([item, event]) => ({ item, event })), top: 10 });
        out.personaMuted = await r.persona({ history: history.map(([item, event]) => ({ item, event })), muted: ['Garden'], top: 10 });
      }
      r.close();
    }
    return out;
  }, { model: rel(path.join(FIX, 'bundle-typed')) + '/', catalog, history: typed });
  assert.match(runs.badPage, /unknown page type "checkout"/);
  assert.deepEqual(runs.personaFacets, signals.persona.facets);
  const mutedScores = new Map(runs.muted.map((r) => [r.id, r.score]));
  const moved = Math.max(...ours.map((r) => (mutedScores.has(r.id) ? Math.abs(mutedScores.get(r.id) - r.score) : Infinity)));
  console.log(`muting two persona facets moves a score by up to ${moved.toExponential(2)}`);
  assert.ok(moved > 1e-6, 'muted persona facets change the scores');
  // The persona the model reads: the liked and carted garden items, the clicked audio ones, the
  // viewed coffee one; the disliked office item counts against its genre.
  const genres = runs.persona.map((p) => p.category);
  console.log(`persona: ${runs.persona.map((p) => `${p.category} ${p.share.toFixed(2)}`).join(', ')}`);
  assert.deepEqual([...genres].sort(), ['audio', 'coffee', 'garden']);
  assert.ok(Math.abs(runs.persona.reduce((t, p) => t + p.share, 0) - 1) < 1e-5);
  assert.ok(runs.persona.every((p, i) => i === 0 || p.weight <= runs.persona[i - 1].weight), 'strongest first');
  assert.deepEqual(runs.personaMuted.map((p) => p.category).sort(), ['audio', 'coffee'], 'a muted facet leaves the persona');
  for (const key of ['badPage', 'personaFacets', 'muted', 'persona', 'personaMuted']) delete runs[key];
  for (const [backend, { got, recs }] of Object.entries(runs)) {
    assert.equal(got, backend);
    assert.deepEqual(recs.map((r) => r.id), ours.map((r) => r.id), `${backend}: same items`);
    const diff = Math.max(...ours.map((r, i) => Math.abs(r.score - recs[i].score)));
    console.log(`typed history, ${backend}: max |browser − native| score ${diff.toExponential(2)}`);
    assert.ok(diff < 1e-4, `${backend}: ${diff}`);
    for (let i = 0; i < ours.length; i++) assert.deepEqual(new Set(recs[i].because), new Set(ours[i].because));
  }
  const theirs = runs.cpu.recs;
  // The types matter (the same items read as clicks score differently), and a disliked item
  // never explains a recommendation.
  const clickScores = new Map(asClicks.map((r) => [r.id, r.score]));
  assert.ok(ours.some((r) => !clickScores.has(r.id) || Math.abs(clickScores.get(r.id) - r.score) > 1e-3), 'event types change the scores');
  assert.ok(theirs.every((r) => !r.because.includes('item-8')), 'the disliked item explains nothing');
});

test('WebGPU recommendations equal the native ones within 1e-4 (where an adapter exists)', { timeout: 300_000 }, async (t) => {
  const page = await openPage(browser, server.url);
  const adapter = await page.evaluate(async () => {
    if (!navigator.gpu) return 'navigator.gpu is absent';
    return (await navigator.gpu.requestAdapter()) ? null : 'requestAdapter() returned null';
  });
  if (adapter) {
    console.log(`SKIPPED WebGPU recommendations: ${adapter}`);
    t.skip(adapter);
    return;
  }
  const b = await browserRecs('webgpu', 'transductive');
  assert.equal(b.backend, 'webgpu', b.reason);
  compare(native('transductive'), b, 'transductive webgpu');
});

test('a bundle without a recommender is refused with a clear message', { timeout: 120_000 }, async () => {
  const page = await openPage(browser, server.url);
  const message = await page.evaluate(async (model) => {
    const { Ranklet } = await import('/www/ranklet.js');
    try { (await Ranklet.load({ model, backend: 'cpu' })).close(); return 'loaded'; } catch (err) { return err.message; }
  }, rel(path.join(FIX, 'encoder')) + '/');
  assert.match(message, /no recommender/);
});

test('IndexedDB: cached vectors are reused, the history persists across pages and tabs, forget() wipes it', { timeout: 300_000 }, async () => {
  const catalog = readFileSync(path.join(FIX, 'shop/catalog.jsonl'), 'utf8');
  const model = rel(path.join(FIX, 'bundle-transductive')) + '/';
  // Two tabs of one browser profile (Playwright's browser.newPage() would isolate each page's
  // storage like a private window; a context is one profile).
  const context = await browser.newContext();
  const tab = async () => { const p = await context.newPage(); await p.goto(server.url + '/www/blank.html'); return p; };
  const [a, b] = [await tab(), await tab()];
  const inPage = (page, fn, arg) => page.evaluate(fn, arg);
  // Tab A starts from nothing and indexes: every item is embedded.
  const first = await inPage(a, async ({ model, catalog }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    await r.forget();
    const progress = [];
    const stats = await r.index(catalog, { batch: 16, onProgress: (p) => progress.push(p) });
    r.close();
    return { ...stats, progress };
  }, { model, catalog });
  assert.equal(first.embedded, 40);
  // Progress after each batch of 16: 16, 32, 40 of 40.
  assert.deepEqual(first.progress.map((p) => p.embedded), [16, 32, 40]);
  assert.ok(first.progress.every((p) => p.toEmbed === 40 && p.items === 40));
  // A reload (a fresh instance) reuses every vector; one changed text is the only one embedded.
  const second = await inPage(b, async ({ model, catalog }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    const again = await r.index(catalog);
    const calls = (await r.stats()).embedCalls;
    const changed = await r.index(catalog.replace('"title":"classic french press 0', '"title":"refurbished french press 0'));
    r.close();
    return { again, calls, changed };
  }, { model, catalog });
  assert.equal(second.again.embedded, 0);
  assert.equal(second.again.reused, 40);
  assert.equal(second.calls, 0, 'no embedding call when everything is cached');
  assert.equal(second.changed.embedded, 1);

  // Two tabs record at once: nothing is lost.
  const recordIn = (page, items) => inPage(page, async (items) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model: location.origin + '/target/browser-fixtures/bundle-transductive/', backend: 'cpu' });
    for (const item of items) await r.record({ event: 'click', item });
    r.close();
  }, items);
  await Promise.all([recordIn(a, ['item-3', 'item-17', 'item-8']), recordIn(b, ['item-21', 'item-5'])]);
  const after = await inPage(a, async ({ model, catalog }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    await r.index(catalog);
    const history = await r.history();
    const stored = await r.recommend({ k: 5 });
    const explicit = await r.recommend({ k: 5, history: history.map((e) => e.item) });
    const pool = ['item-1', 'item-2', 'item-30', 'item-31', 'item-3'];
    const among = await r.recommend({ k: 3, candidates: pool });
    // In the context of an item on screen: as if it were the newest event, but not stored.
    const inContext = await r.recommend({ k: 5, context: { item: 'item-30' } });
    const asIfViewed = await r.recommend({ k: 5, history: [...history.map((e) => e.item), 'item-30'] });
    const storedAfter = (await r.history()).length;
    let unknownContext = null;
    try { await r.recommend({ k: 5, context: { item: 'no-such-item' } }); } catch (err) { unknownContext = err.message; }
    let refused = null;
    try { await r.record({ event: 'teleport', item: 'item-1' }); } catch (err) { refused = err.message; }
    await r.forget();
    const wiped = await r.history();
    r.close();
    return { n: history.length, items: history.map((e) => e.item).sort(), stored, explicit, among, pool, refused, wiped: wiped.length, inContext, asIfViewed, storedAfter, unknownContext };
  }, { model, catalog });
  assert.equal(after.n, 5);
  assert.deepEqual(after.items, ['item-17', 'item-21', 'item-3', 'item-5', 'item-8']);
  assert.deepEqual(after.stored, after.explicit, 'recommend() without a history uses the stored one');
  assert.equal(after.stored.length, 5);
  // Candidates: only they are ranked (item-3 is in the history, so it is left out).
  assert.equal(after.among.length, 3);
  for (const r of after.among) assert.ok(after.pool.includes(r.id) && r.id !== 'item-3', r.id);
  for (let i = 1; i < after.among.length; i++) assert.ok(after.among[i - 1].score >= after.among[i].score);
  assert.deepEqual(after.inContext, after.asIfViewed, 'context.item ranks as the newest event');
  assert.notDeepEqual(after.inContext.map((r) => r.id), after.stored.map((r) => r.id), 'the context changes the ranking');
  assert.ok(!after.inContext.some((r) => r.id === 'item-30'), 'the context item is not recommended');
  assert.equal(after.storedAfter, 5, 'the context is not stored');
  assert.match(after.unknownContext, /context item "no-such-item" is not in the indexed catalog/);
  assert.match(after.refused, /unknown event type "teleport"/);
  assert.equal(after.wiped, 0);
  await context.close();
});

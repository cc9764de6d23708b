// The catalogue benchmark's browser part: a visitor's first visit to a personal shelf (load the
// bundle and its item index, index the catalogue, rank after three clicks) in a fresh browser
// profile, a later visit in the same profile, and recommend() latency — for each catalogue
// prepared by scripts/bench-catalog.sh under target/bench-catalog/<name>/.
// Usage: node tests/browser/catalog_bench.mjs OUT.json name[:model-dir] ...
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { ROOT, startServer, launchBrowser } from './helpers.mjs';

const [out, ...cases] = process.argv.slice(2);
const server = await startServer();
const browser = await launchBrowser();
const browserName = `Chromium ${browser.version()} (headless, playwright-core), CPU backend`;
const rel = (p) => '/' + path.relative(ROOT, p).split(path.sep).join('/');

// The gzip -9 size of a served file (what a compressing host sends), by its URL path.
function gzipBytesOf(urlPath) {
  try {
    return gzipSync(readFileSync(path.join(ROOT, decodeURIComponent(urlPath))), { level: 9 }).length;
  } catch {
    return 0;
  }
}

// A blank page of the server with every request's path recorded (and any off the machine).
async function trackedPage(context) {
  const page = await context.newPage();
  const paths = [];
  const foreign = [];
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.hostname !== '127.0.0.1') foreign.push(u.href);
    else paths.push(u.pathname);
  });
  await page.goto(`${server.url}/www/blank.html`);
  return { page, paths, foreign };
}

async function visit(context, model, catalogUrl) {
  const { page, paths, foreign } = await trackedPage(context);
  const r = await page.evaluate(async ({ model, catalogUrl }) => {
    const t0 = performance.now();
    const { Ranklet } = await import('/www/ranklet.js');
    const catalog = await (await fetch(catalogUrl)).text();
    const ranklet = await Ranklet.load({ model, backend: 'cpu' });
    const tLoad = performance.now();
    const stats = await ranklet.index(catalog);
    const tIndex = performance.now();
    const ids = catalog.trim().split('\n').slice(0, 3).map((l) => JSON.parse(l).id);
    const recs = await ranklet.recommend({ k: 8, history: ids });
    const total = performance.now() - t0;
    // recommend() with everything in place: several histories, median.
    const all = catalog.trim().split('\n');
    const times = [];
    for (let k = 0; k < 15; k++) {
      const history = [0, 1, 2, 3, 4].map((j) => JSON.parse(all[(k * 7919 + j * 104729) % all.length]).id);
      const s = performance.now();
      await ranklet.recommend({ k: 8, history });
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    const note = ranklet.note;
    const indexItems = ranklet.indexItems;
    ranklet.close();
    return { total_ms: total, load_ms: tLoad - t0, index_ms: tIndex - tLoad, recommend_ms: times[Math.floor(times.length / 2)],
      stats, recs: recs.length, note, indexItems };
  }, { model, catalogUrl });
  await page.close();
  const unique = [...new Set(paths)];
  return { ...r, requests: paths.length, gzip_bytes: unique.reduce((n, p) => n + gzipBytesOf(p), 0), foreign };
}

// A visit to a shop served with a partitioned index: no catalogue; the popular shard's first
// three items as the clicks; then recommend() with the wanted shards cached, and with wanted
// shards fetched from the server (other histories from the popular shard, until 10 such).
async function visitCells(context, model) {
  const { page, paths, foreign } = await trackedPage(context);
  const r = await page.evaluate(async ({ model }) => {
    const t0 = performance.now();
    const { Ranklet } = await import('/www/ranklet.js');
    const ranklet = await Ranklet.load({ model, backend: 'cpu' });
    const tLoad = performance.now();
    const popular = ranklet.partitioned.popular.map((it) => it.id);
    const first = await ranklet.recommend({ k: 8, history: popular.slice(0, 3) });
    const total = performance.now() - t0;
    const firstShards = (await ranklet.stats()).lastShards;
    const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
    // Latency as a visitor meets it: each call 500 ms after the last (clicks are seconds
    // apart), so the previous call's decoy requests have settled. Back to back, the same calls
    // also share the machine with those requests (reported beside it).
    const pause = () => new Promise((resolve) => setTimeout(resolve, 500));
    const cached = [];
    for (let k = 0; k < 9; k++) {
      await pause();
      const s = performance.now();
      await ranklet.recommend({ k: 8, history: popular.slice(0, 3) });
      cached.push(performance.now() - s);
    }
    const backToBack = [];
    for (let k = 0; k < 9; k++) {
      const s = performance.now();
      await ranklet.recommend({ k: 8, history: popular.slice(0, 3) });
      backToBack.push(performance.now() - s);
    }
    const fetched = [];
    const requested = [];
    for (let k = 0; fetched.length < 10 && k < 200; k++) {
      const history = [0, 1, 2].map((j) => popular[(3 + k * 3 + j * 37) % popular.length]);
      await pause();
      const s = performance.now();
      await ranklet.recommend({ k: 8, history });
      const took = performance.now() - s;
      const last = (await ranklet.stats()).lastShards;
      requested.push(last.requested);
      if (last.fetchedWanted > 0) fetched.push(took);
    }
    const out = { total_ms: total, load_ms: tLoad - t0, recommend_cached_ms: median(cached), recommend_cached_back_to_back_ms: median(backToBack),
      recommend_cached_samples: cached, recommend_fetch_ms: median(fetched), recommend_fetch_samples: fetched,
      fetch_samples: fetched.length, requests_per_recommend: [...new Set(requested)], first_shards: firstShards,
      recs: first.length, personal: first.every((x) => x.score !== null), partitioned: ranklet.partitioned && { ...ranklet.partitioned, popular: popular.length },
      note: ranklet.note };
    ranklet.close();
    return out;
  }, { model });
  await page.close();
  // The bytes of the first visit up to its personal shelf: the module, the bundle's recommender,
  // the index's manifest, centroids and popular shard, and the first recommendation's shards.
  const unique = [...new Set(paths)];
  return { ...r, requests: paths.length, gzip_bytes_all: unique.reduce((n, p) => n + gzipBytesOf(p), 0), paths: unique, foreign };
}

const sizes = [];
try {
  for (const c of cases) {
    const [name, modelDir = 'shop', kind] = c.split(':');
    if (kind === 'cells') {
      const dir = path.join(ROOT, 'target/bench-catalog', name);
      const model = rel(path.join(dir, modelDir)) + '/';
      const context = await browser.newContext();
      const first = await visitCells(context, model);
      const later = await visitCells(context, model);
      await context.close();
      // First-visit bytes: everything fetched before the first personal shelf (the later
      // recommendations' shards excluded): the paths up to and including the first
      // recommendation's shard requests.
      const upToShelf = first.paths.filter((p) => !p.includes('/shards/') || p.includes('popular'));
      const firstShards = first.paths.filter((p) => p.includes('/shards/') && !p.includes('popular')).slice(0, first.first_shards.requested);
      const bytes = [...upToShelf, ...firstShards].reduce((n, p) => n + gzipBytesOf(p), 0);
      const entry = { name, model: modelDir, partitioned: first.partitioned,
        first_visit_ms: first.total_ms, first_visit_bytes_gzip: bytes, later_visit_ms: later.total_ms,
        recommend_cached_ms: first.recommend_cached_ms, recommend_cached_back_to_back_ms: first.recommend_cached_back_to_back_ms,
        recommend_fetch_ms: first.recommend_fetch_ms,
        shards_per_recommend: first.requests_per_recommend, personal: first.personal, index_note: first.note ?? null,
        foreign_requests: [...first.foreign, ...later.foreign], detail: { first: { ...first, paths: undefined }, later: { ...later, paths: undefined } } };
      console.log(JSON.stringify({ name, first_visit_ms: Math.round(entry.first_visit_ms), gzip: bytes, later_visit_ms: Math.round(entry.later_visit_ms),
        cached_ms: entry.recommend_cached_ms?.toFixed(1), fetch_ms: entry.recommend_fetch_ms?.toFixed(1), shards: entry.shards_per_recommend }));
      sizes.push(entry);
      continue;
    }
    const dir = path.join(ROOT, 'target/bench-catalog', name);
    const model = rel(path.join(dir, modelDir)) + '/';
    const catalogUrl = rel(path.join(dir, 'catalog.jsonl'));
    const context = await browser.newContext();
    const first = await visit(context, model, catalogUrl);
    const later = await visit(context, model, catalogUrl);
    await context.close();
    const entry = { name, model: modelDir, items: first.stats.items, from_index: first.stats.fromIndex, embedded_first_visit: first.stats.embedded,
      first_visit_ms: first.total_ms, first_visit_bytes_gzip: first.gzip_bytes, first_visit_requests: first.requests,
      later_visit_ms: later.total_ms, recommend_cached_ms: later.recommend_ms, index_note: first.note ?? null,
      foreign_requests: [...first.foreign, ...later.foreign], detail: { first, later } };
    console.log(JSON.stringify({ name, items: entry.items, first_visit_ms: Math.round(entry.first_visit_ms), gzip: entry.first_visit_bytes_gzip,
      later_visit_ms: Math.round(entry.later_visit_ms), recommend_ms: entry.recommend_cached_ms.toFixed(1), from_index: entry.from_index }));
    sizes.push(entry);
  }
} finally {
  await browser.close();
  server.stop();
}
const result = { browser: browserName, sizes };
writeFileSync(`${out}.tmp`, JSON.stringify(result, null, 2) + '\n');
renameSync(`${out}.tmp`, out);

// A partitioned item index (`ranklet index --partitions`) in headless Chromium, through the real
// wasm module: with every cell probed, recommend() equals the exact ranking over the whole
// index; at the default settings every recommend() requests the same number of shards whatever
// the history; a damaged shard is refused by name and skipped while the rest ranks; no request
// leaves the origin, and none carries the history (every URL and body is inspected).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, readdirSync } from 'node:fs';
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

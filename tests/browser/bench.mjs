// Runs www/bench.html in headless Chromium and saves its JSON: node tests/browser/bench.mjs OUT.json
// (./build.sh bench does this). Query parameters of the page can be passed as BENCH_QUERY.
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { ROOT, startServer, launchBrowser } from './helpers.mjs';

// What a visitor downloads for the shop: the module, the JS around it, and the bundle's files.
function downloadBytes(bundle) {
  const files = ['www/pkg/ranklet_bg.wasm', 'www/pkg/ranklet.js', 'www/ranklet.js', 'www/worker.js', 'www/history.js', 'www/store.js', 'www/webgpu.js', 'www/ranklet-shelf.js', 'www/contract.js', 'www/catalog.js', 'www/dom.js', 'www/taste.js'];
  const manifest = JSON.parse(readFileSync(path.join(ROOT, bundle, 'manifest.json'), 'utf8'));
  const e = manifest.encoder, r = manifest.recommender ?? {};
  for (const f of ['manifest.json', e.config, e.tokenizer, e.weights, r.weights, r.items].filter(Boolean)) files.push(path.join(bundle, f));
  const parts = files.filter((f) => existsSync(path.join(ROOT, f))).map((f) => {
    const bytes = readFileSync(path.join(ROOT, f));
    return { file: f, bytes: bytes.length, gzip_bytes: gzipSync(bytes, { level: 9 }).length };
  });
  return { bundle, files: parts, bytes: parts.reduce((n, p) => n + p.bytes, 0), gzip_bytes: parts.reduce((n, p) => n + p.gzip_bytes, 0) };
}

// The headline figures of issue 7 at the top level; the detail stays below them.
function summarise(result) {
  const tps = {};
  for (const r of result.runs) ((tps[r.model] ??= {})[r.backend] ??= {})[r.batch] = r.texts_per_s;
  const peer = {};
  for (const r of result.peer ?? []) (peer[r.dtype] ??= {})[r.batch] = r.texts_per_s;
  const student = Object.keys(tps).find((m) => m.includes('student'));
  const maxBatch = Math.max(...result.runs.map((r) => r.batch));
  const bestPeer = Math.max(...(result.peer ?? []).filter((r) => r.batch === maxBatch).map((r) => r.texts_per_s));
  const studentCpu = student ? tps[student].cpu?.[maxBatch] : undefined;
  const rec = (result.recommender ?? []).find((r) => r.backend === 'cpu' && !r.skipped);
  const at = (n) => rec?.recommend.find((x) => x.candidates === n)?.median_ms ?? null;
  const shop = result.recommender?.[0]?.model?.replace(/^\.\.\//, '').replace(/\/$/, '');
  const download = shop ? downloadBytes(shop) : null;
  return {
    cold_start_ms: rec?.cold_start.total_ms ?? null,
    first_visit_ms: rec?.first_visit.total_ms ?? null,
    recommend_1k_ms: at(1000),
    recommend_10k_ms: at(10000),
    // recommend() over the largest candidate set by history length (events).
    recommend_ms_by_history: Object.fromEntries((rec?.recommend_by_history ?? []).map((x) => [String(x.history), x.median_ms])),
    texts_per_s: tps,
    transformersjs_texts_per_s: peer,
    ratio_vs_transformersjs: studentCpu && Number.isFinite(bestPeer) ? studentCpu / bestPeer : null,
    ratio_batch: maxBatch,
    cosine_to_teacher: result.cosine_to_teacher,
    download_gzip_bytes: download?.gzip_bytes ?? null,
    download,
    memory: rec?.memory ?? null,
    backend: [...new Set(result.runs.map((r) => r.backend))],
  };
}

const out = process.argv[2] ?? 'reports/browser-embed.json';
const query = process.env.BENCH_QUERY ?? 'backends=cpu&texts=64';
// The transformers.js peer lives under .cache/peer/ (./build.sh bench-web), which the server
// never serves as a dotted path: it is mounted under /peer/. The peer is third-party code
// measured as shipped, so its page relaxes the default policy for it (eval and blob workers,
// which ONNX Runtime Web may use); ranklet's own pages are tested under the strict default.
const peer = path.join(process.env.RANKLET_CACHE ?? path.join(ROOT, '.cache'), 'peer');
const server = await startServer([
  ...(existsSync(peer) ? ['--mount', `/peer/=${peer}`] : []),
  '--header', "Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; worker-src 'self' blob:",
]);
const browser = await launchBrowser();
try {
  // Nothing may leave the origin, transformers.js included (it would fetch from the HF hub or a
  // CDN if misconfigured): such requests are aborted and listed in the report.
  const foreign = [];
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== '127.0.0.1') { foreign.push(url.href); return route.abort(); }
    return route.continue();
  });
  const page = await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') console.log(`[page] ${msg.text()}`); });
  await page.goto(`${server.url}/www/bench.html?${query}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000, polling: 500 });
  const detail = await page.evaluate(() => window.benchResult);
  if (detail.error) throw new Error(`the bench page failed: ${detail.error}`);
  const result = {
    command: `node tests/browser/bench.mjs ${out} (BENCH_QUERY=${query}); ./build.sh bench-web runs it`,
    browser: `Chromium ${browser.version()} (headless, playwright-core)`,
    ...summarise(detail),
    foreign_requests: foreign,
    detail,
  };
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, JSON.stringify(result, null, 2) + '\n');
  renameSync(tmp, out);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  server.stop();
}

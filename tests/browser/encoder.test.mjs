// The text encoder in headless Chromium, in a Web Worker, through the real wasm module:
// (a) the teacher on the CPU backend reproduces the PyTorch reference embeddings;
// (b) where WebGPU yields an adapter, a tiny random BERT (written by `ranklet fixture`) gives the
//     same outputs on WebGPU and on the CPU backend; (c) corrupt or missing bundle files are refused, naming the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

const BIN = process.env.RANKLET_BIN ?? path.join(ROOT, 'target/release/ranklet');
const FIX = path.join(ROOT, 'target/browser-fixtures-encoder');

let server, browser;
before(async () => {
  rmSync(FIX, { recursive: true, force: true });
  // The tiny random BERT for two seeds, as bundle folders served from this origin.
  for (const seed of [7, 8]) {
    execFileSync(BIN, ['fixture', '--out', path.join(FIX, `seed-${seed}`), '--seed', String(seed)], { stdio: 'ignore' });
  }
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

test('teacher on the CPU backend reproduces the reference embeddings', { timeout: 600_000 }, async () => {
  const page = await openPage(browser, server.url);
  const r = await page.evaluate(async () => {
    const { RankletEncoder, cosine } = await import('/www/ranklet.js');
    const reference = await (await fetch('/tests/fixtures/all-minilm-l6-v2/reference.json')).json();
    const enc = await RankletEncoder.load('/models/teacher/', { backend: 'cpu' });
    const texts = reference.items.map((it) => it.text);
    const idMismatches = [];
    for (const it of reference.items) {
      const ids = await enc.tokenize(it.text);
      if (JSON.stringify(ids) !== JSON.stringify(it.input_ids)) idMismatches.push(it.text);
    }
    const t0 = performance.now();
    const vectors = await enc.embed(texts);
    const ms = performance.now() - t0;
    const cosines = vectors.map((v, i) => cosine(v, reference.items[i].embedding));
    enc.close();
    return { backend: enc.backend, reason: enc.backendReason, dim: enc.dim, idMismatches, cosines, ms, n: texts.length };
  });
  console.log(`browser backend ran: ${r.backend} (${r.reason}); ${r.n} reference texts in ${r.ms.toFixed(0)} ms; min cosine ${Math.min(...r.cosines).toFixed(7)}`);
  assert.equal(r.backend, 'cpu');
  assert.equal(r.dim, 384);
  assert.deepEqual(r.idMismatches, []);
  assert.equal(r.cosines.length, 25);
  for (const c of r.cosines) assert.ok(c >= 0.999, `cosine ${c}`);
});

test('tiny random BERT: WebGPU and CPU agree within 1e-4 (where an adapter exists)', { timeout: 600_000 }, async (t) => {
  const page = await openPage(browser, server.url);
  const adapter = await page.evaluate(async () => {
    if (!navigator.gpu) return { ok: false, reason: 'navigator.gpu is absent' };
    const a = await navigator.gpu.requestAdapter();
    if (!a) return { ok: false, reason: 'requestAdapter() returned null' };
    const info = a.info ?? {};
    return { ok: true, reason: `${info.vendor ?? '?'} ${info.architecture ?? ''}`.trim() };
  });
  if (!adapter.ok) {
    console.log(`SKIPPED WebGPU comparison: ${adapter.reason}`);
    t.skip(adapter.reason);
    return;
  }
  const tiny = (seed) => `/${path.relative(ROOT, FIX).split(path.sep).join('/')}/seed-${seed}/encoder/`;
  const r = await page.evaluate(async ({ seven, eight }) => {
    const { RankletEncoder } = await import('/www/ranklet.js');
    const texts = ['Red shoes', 'USB charger cable, black and white wireless', 'x', 'blue coffee mugs for tea lovers'];
    const gpu = await RankletEncoder.load(seven, { backend: 'webgpu' });
    const cpu = await RankletEncoder.load(seven, { backend: 'cpu' });
    const other = await RankletEncoder.load(eight, { backend: 'cpu' });
    const [a, b, c] = [await gpu.embed(texts), await cpu.embed(texts), await other.embed(texts)];
    const maxDiff = (x, y) => Math.max(...x.flatMap((row, i) => Array.from(row, (v, j) => Math.abs(v - y[i][j]))));
    const out = { gpuBackend: gpu.backend, gpuReason: gpu.backendReason, cpuBackend: cpu.backend, diff: maxDiff(a, b), seedDiff: maxDiff(b, c) };
    gpu.close(); cpu.close(); other.close();
    return out;
  }, { seven: tiny(7), eight: tiny(8) });
  console.log(`browser backends ran: webgpu (${adapter.reason}; ${r.gpuReason}) and cpu; max |webgpu − cpu| = ${r.diff.toExponential(2)}`);
  assert.equal(r.gpuBackend, 'webgpu', r.gpuReason);
  assert.equal(r.cpuBackend, 'cpu');
  assert.ok(r.diff < 1e-4, `max abs diff ${r.diff}`);
  assert.ok(r.seedDiff > 1e-2, 'different seeds must give different vectors');
});

test('a corrupt or missing bundle file is refused with a message naming it', { timeout: 120_000 }, async () => {
  const page = await openPage(browser, server.url);
  const tryLoad = (model) => page.evaluate(async (model) => {
    const { RankletEncoder } = await import('/www/ranklet.js');
    try {
      const enc = await RankletEncoder.load(model, { backend: 'cpu' });
      enc.close();
      return 'loaded';
    } catch (err) {
      return err.message;
    }
  }, model);
  // One character changed in config.json, same length: only the checksum can tell.
  await page.route('**/models/teacher/config.json', async (route) => {
    const response = await route.fetch();
    const text = (await response.text()).replace('"num_hidden_layers": 6', '"num_hidden_layers": 5');
    await route.fulfill({ response, body: text });
  });
  const corrupt = await tryLoad('/models/teacher/');
  await page.unroute('**/models/teacher/config.json');
  await page.route('**/models/teacher/tokenizer.json', (route) => route.fulfill({ status: 404, body: 'gone' }));
  const missing = await tryLoad('/models/teacher/');
  const absent = await tryLoad('/models/nonexistent/');
  console.log(`refusals: ${corrupt} | ${missing} | ${absent}`);
  assert.match(corrupt, /config\.json.*sha256/);
  assert.match(missing, /tokenizer\.json.*404/);
  assert.match(absent, /manifest\.json.*404/);
  // The page itself is still alive and usable after the refusals.
  assert.equal(await page.evaluate(() => 1 + 1), 2);
});

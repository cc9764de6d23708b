// A full disk: with the origin's storage quota forced down (Chrome DevTools Protocol), history
// writes never reject into the page, the newest events are the ones kept, and the history the
// recommender reads still ends with the newest event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

test('quota exceeded on history writes keeps the newest events and does not throw', { timeout: 120_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 200 * 1024 });
  await page.goto(`${server.url}/www/blank.html`);
  const r = await page.evaluate(async () => {
    const store = await import('/www/store.js');
    // Incompressible 1 kB queries, far more than the quota holds.
    const noise = (i) => `q${i} ` + Array.from(crypto.getRandomValues(new Uint8Array(1000)), (b) => String.fromCharCode(33 + (b % 89))).join('');
    const results = [];
    for (let i = 0; i < 400; i++) results.push(await store.recordEvent({ event: 'search', query: noise(i), ts: i }, 100000));
    const stored = await store.readEvents();
    const history = await store.readHistory();
    return {
      unsavedCount: results.filter((x) => !x.saved).length,
      note: results.find((x) => !x.saved)?.note ?? null,
      stored: stored.map((e) => e.ts),
      history: history.map((e) => e.ts),
    };
  });
  console.log(`quota 200 kB: ${r.stored.length} events stored, ${r.unsavedCount} kept in memory only; ${r.note}`);
  assert.ok(r.stored.length > 0 && r.stored.length < 400, `the quota bites (${r.stored.length} stored)`);
  // Storage keeps events in order, and the oldest made room for newer ones.
  const s = r.stored;
  assert.ok(s.every((t, i) => i === 0 || t > s[i - 1]), 'stored events are in order');
  assert.ok(s[0] > 0, 'the oldest events made room');
  // The history the recommender reads has the newest events, whatever storage took.
  assert.deepEqual(r.history.slice(-10), [390, 391, 392, 393, 394, 395, 396, 397, 398, 399]);
  assert.equal(new Set(r.history).size, r.history.length);
  if (r.unsavedCount) assert.match(r.note, /QuotaExceededError.*kept for this visit only/);
  assert.deepEqual(errors, []);
  await context.close();
});

// The bench page's catalogue chart (www/bench-catalog.js) draws the committed
// reports/catalog.json: one chart per measure, one bar per catalogue size, the targets marked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

test('the catalogue chart shows every size of reports/catalog.json with its targets', { timeout: 120_000 }, async () => {
  const report = JSON.parse(readFileSync(path.join(ROOT, 'reports/catalog.json'), 'utf8'));
  const page = await openPage(browser, server.url);
  const drawn = await page.evaluate(async () => {
    const { showCatalogReport } = await import('/www/bench-catalog.js');
    const div = document.createElement('div');
    document.body.append(div);
    await showCatalogReport(div, '/reports/catalog.json');
    const missing = document.createElement('div');
    await showCatalogReport(missing, '/reports/no-such-report.json');
    return {
      charts: Array.from(div.querySelectorAll('table.chart'), (t) => ({
        caption: t.caption.textContent,
        rows: Array.from(t.querySelectorAll('tr'), (r) => r.textContent),
        targets: t.querySelectorAll('.target').length,
      })),
      missing: missing.textContent,
    };
  });
  const first = drawn.charts.find((c) => c.caption.startsWith('first visit to'));
  assert.ok(first, JSON.stringify(drawn.charts.map((c) => c.caption)));
  assert.equal(first.rows.length, report.sizes.filter((s) => typeof s.first_visit_ms === 'number').length);
  for (const s of report.sizes) assert.ok(first.rows.some((r) => r.includes(s.items.toLocaleString('en'))), `${s.name} is drawn`);
  assert.ok(first.targets >= 2, 'the 20 000 and 1 000 000 targets are marked');
  assert.ok(drawn.charts.some((c) => c.caption.startsWith('recall@10')));
  assert.match(drawn.missing, /no catalogue report.*HTTP 404/);
});

// The similarity page as a visitor uses it: it loads the teacher by itself, embeds the default texts,
// shows the similarity table — and no request leaves the page's origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer(['--header', "Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'"]);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  server?.stop();
});

test('similarity page embeds the default texts in the browser, same-origin only', { timeout: 300_000 }, async () => {
  const page = await browser.newPage();
  const requests = [];
  page.context().on('request', (r) => requests.push(r.url()));
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/www/similarity.html`);
  await page.waitForFunction(() => /texts embedded/.test(document.getElementById('status').textContent), null, { timeout: 240_000 });
  const status = await page.textContent('#status');
  const cells = await page.$$eval('table tr', (rows) => rows.slice(1).map((r) => Array.from(r.querySelectorAll('td'), (td) => Number(td.textContent))));
  console.log(`similarity: ${status}`);
  assert.equal(cells.length, 5);
  cells.forEach((row, i) => {
    assert.equal(row.length, 5);
    assert.ok(Math.abs(row[i] - 1) < 1e-3, `diagonal ${row[i]}`);
  });
  // Charger vs. earbuds-with-charging-case is closer than charger vs. French press.
  assert.ok(cells[0][3] > cells[0][2], `cosines ${cells[0]}`);
  assert.deepEqual(pageErrors, []);
  const origin = new URL(server.url).origin;
  const foreign = requests.filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(foreign, [], 'requests left the origin');
  assert.ok(requests.some((u) => u.endsWith('/models/teacher/model.safetensors')));
});

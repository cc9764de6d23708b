// Runs www/bench.html in headless Chromium and saves its JSON: node tests/browser/bench.mjs OUT.json
// (./build.sh bench does this). Query parameters of the page can be passed as BENCH_QUERY.
import { writeFileSync, renameSync } from 'node:fs';
import { startServer, launchBrowser, openPage } from './helpers.mjs';

const out = process.argv[2] ?? 'reports/browser-embed.json';
const query = process.env.BENCH_QUERY ?? 'backends=cpu&texts=64';
const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await openPage(browser, server.url, `/www/bench.html?${query}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000, polling: 500 });
  const result = await page.evaluate(() => window.benchResult);
  result.command = `node tests/browser/bench.mjs ${out} (BENCH_QUERY=${query})`;
  result.browser = browser.version();
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, JSON.stringify(result, null, 2) + '\n');
  renameSync(tmp, out);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  server.stop();
}

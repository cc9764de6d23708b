// Every page of www/ opened with hostile URL parameters (another origin's catalogue, model,
// report; an absolute URL, a protocol-relative one, a data: URL): counts the requests that leave
// the page's origin (each is aborted and listed). Prints {"foreign_requests": N, "pages": …};
// ./build.sh report-hardening puts the count into reports/hardening.json.
import { startServer, launchBrowser } from './helpers.mjs';

const hostile = ['https://example.invalid/x.json', '//example.invalid/x.json', 'http://127.0.0.2:9/x.json'];
const pages = [];
for (const url of hostile) {
  pages.push(`/www/index.html?backend=cpu&catalog=${encodeURIComponent(url)}`);
  pages.push(`/www/index.html?backend=cpu&model=${encodeURIComponent(url.replace('x.json', 'm/'))}`);
  pages.push(`/www/bench.html?backends=cpu&texts=2&batches=1&candidates=&histories=&catalogReport=${encodeURIComponent(url)}&model=${encodeURIComponent(url)}&shop=${encodeURIComponent(url)}&catalog=${encodeURIComponent(url)}`);
}
pages.push('/www/similarity.html', '/www/embed-example.html');

const server = await startServer();
const browser = await launchBrowser();
const foreign = [];
const visited = [];
try {
  for (const p of pages) {
    const context = await browser.newContext();
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.origin !== server.url && u.protocol !== 'data:' && u.protocol !== 'blob:') {
        foreign.push({ page: p, url: route.request().url() });
        return route.abort();
      }
      return route.continue();
    });
    const page = await context.newPage();
    await page.goto(server.url + p);
    await page.waitForTimeout(4000); // the page's own loading: model, catalogue, report
    visited.push(p);
    await context.close();
  }
} finally {
  await browser.close();
  server.stop();
}
console.log(JSON.stringify({ foreign_requests: foreign.length, foreign, pages: visited }));

// The search-event effect for reports/history.json (./build.sh report-history): in headless
// Chromium, the shop bundle (models/shop) over the ml-100k catalogue, the share of a query's
// genre among the top 10 (a) by popularity — what the shelf shows before any event — and after
// a search with no click; (b) after three clicks on films of other genres, before and after the
// same search. Prints one JSON object.
// Usage: node tests/browser/search_effect.mjs [model folder, default models/shop/]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers.mjs';

const model = process.argv[2] ?? 'models/shop/';
const QUERIES = [['space', 'Sci-Fi'], ['ghosts', 'Horror'], ['cowboys', 'Western'], ['love story', 'Romance'],
  ['soldiers', 'War'], ['cartoon', 'Animation']];
// Three clicks away from every query's genre: a comedy, a crime film, a documentary.
const CLICKS = ['Clerks', 'Pulp Fiction', 'Hoop Dreams'];

const catalogText = readFileSync(path.join(ROOT, 'www/catalog/ml-100k.json'), 'utf8');
const catalog = JSON.parse(catalogText);
const byTitle = new Map(catalog.map((it) => [it.title, it]));
const clicks = CLICKS.map((t) => {
  const it = byTitle.get(t);
  if (!it) throw new Error(`no film titled ${t} in the catalogue`);
  return it.id;
});
const byId = new Map(catalog.map((it) => [it.id, it]));
const share = (ids, genre) => ids.filter((id) => byId.get(id).genres.includes(genre)).length / ids.length;
const popular = [...catalog].sort((a, b) => b.popularity - a.popularity).map((it) => it.id);

const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await openPage(browser, server.url);
  const runs = await page.evaluate(async ({ model, catalogText, queries, clicks }) => {
    const { Ranklet } = await import('/www/ranklet.js');
    const r = await Ranklet.load({ model, backend: 'cpu' });
    await r.index(catalogText);
    const out = [];
    const before = (await r.recommend({ k: 10, history: clicks })).map((x) => x.id);
    for (const [query] of queries) {
      const alone = await r.recommend({ k: 10, history: [{ query }] });
      const after = await r.recommend({ k: 10, history: [...clicks, { query }] });
      out.push({
        query,
        alone: alone.map((x) => x.id),
        aloneBecause: alone.every((x) => x.because.length + x.becauseQueries.length > 0),
        after: after.map((x) => x.id),
      });
    }
    r.close();
    return { before, out };
  }, { model: '/' + model.replace(/^\/+/, ''), catalogText, queries: QUERIES, clicks });
  const rows = QUERIES.map(([query, genre], i) => {
    const run = runs.out[i];
    const popularTop = popular.slice(0, 10).filter((id) => !clicks.includes(id)).slice(0, 10);
    return {
      query,
      genre,
      catalogue_share: share(catalog.map((it) => it.id), genre),
      no_clicks: { popularity_top10: share(popular.slice(0, 10), genre), after_search_top10: share(run.alone, genre), every_card_has_a_because: run.aloneBecause },
      after_3_clicks: { before_search_top10: share(runs.before, genre), after_search_top10: share(run.after, genre), popularity_top10: share(popularTop, genre) },
    };
  });
  const mean = (f) => rows.reduce((n, r) => n + f(r), 0) / rows.length;
  console.log(JSON.stringify({
    command: `node tests/browser/search_effect.mjs ${model}`,
    model,
    clicks: CLICKS,
    queries: rows,
    mean_genre_share_top10: {
      popularity: mean((r) => r.no_clicks.popularity_top10),
      search_no_clicks: mean((r) => r.no_clicks.after_search_top10),
      three_clicks: mean((r) => r.after_3_clicks.before_search_top10),
      three_clicks_then_search: mean((r) => r.after_3_clicks.after_search_top10),
    },
  }, null, 2));
} finally {
  await browser.close();
  server.stop();
}

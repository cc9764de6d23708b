// Persona accuracy on ml-100k (issue 10's report): the shop widget's own personaOf()
// (www/taste.js) over each user's earlier 80 % of rating events, against
//   - the most frequent genre of those same events (does the persona name what dominates?), and
//   - the most frequent genre of the user's later 20 % (does it describe the taste to come?),
// beside a baseline that names the most frequent genre of all users' earlier events.
// Usage: node tests/tools/persona_accuracy.mjs data/ml-100k www/catalog/ml-100k.json > out.json
import { readFileSync } from 'node:fs';
import path from 'node:path';

const { personaOf } = await import(path.resolve('www/taste.js'));
const { categoriesOf } = await import(path.resolve('www/catalog.js'));

const [dataDir, catalogPath] = process.argv.slice(2);
const items = JSON.parse(readFileSync(catalogPath, 'utf8'));
const byId = new Map(items.map((it) => [it.id, it]));
const lines = readFileSync(path.join(dataDir, 'ml-100k.inter'), 'utf8').trim().split('\n').slice(1);
const users = new Map();
lines.forEach((line, order) => {
  const [user, item, rating, ts] = line.split('\t');
  if (!users.has(user)) users.set(user, []);
  users.get(user).push({ item, value: Number(rating), ts: Number(ts), order });
});

const counts = (events) => {
  const c = new Map();
  for (const e of events) for (const g of categoriesOf(byId.get(e.item))) c.set(g, (c.get(g) ?? 0) + 1);
  return c;
};
const argmaxSet = (c) => {
  const best = Math.max(...c.values());
  return new Set([...c.entries()].filter(([, n]) => n === best).map(([g]) => g));
};

const earlier = [];
for (const events of users.values()) {
  events.sort((a, b) => a.ts - b.ts || a.order - b.order);
  const cut = Math.floor(events.length * 0.8);
  earlier.push([events.slice(0, cut), events.slice(cut)]);
}
const global = counts(earlier.flatMap(([e]) => e));
const baseline = [...global.entries()].sort((a, b) => b[1] - a[1])[0][0];

let n = 0, sameHistory = 0, future = 0, futureTop3 = 0, baselineHits = 0;
for (const [before, after] of earlier) {
  if (before.length < 5 || after.length < 2) continue;
  const persona = personaOf(items, before.map((e) => ({ item: e.item, event: 'rating', value: e.value })), 3);
  if (!persona.length) continue;
  n += 1;
  const top = persona[0].category;
  if (argmaxSet(counts(before)).has(top)) sameHistory += 1;
  const later = argmaxSet(counts(after));
  if (later.has(top)) future += 1;
  if (persona.some((p) => later.has(p.category))) futureTop3 += 1;
  if (later.has(baseline)) baselineHits += 1;
}
const r = (x) => Math.round((x / n) * 10000) / 10000;
console.log(JSON.stringify({
  command: 'node tests/tools/persona_accuracy.mjs data/ml-100k www/catalog/ml-100k.json',
  users: n,
  persona: 'www/taste.js personaOf over the earlier 80 % of each user\'s rating events (the contract\'s weights: ratings ≥ 4 are likes (2), 3 a click (1), ≤ 2 dislikes (−2); each event split evenly over its genres; recency decay 0.98 per event; 0.9, 0.95, 0.995 and 1 were compared on this same measure)',
  top_matches_most_frequent_genre_same_history: r(sameHistory),
  top_matches_most_frequent_genre_later_20pct: r(future),
  top3_contains_most_frequent_genre_later_20pct: r(futureTop3),
  baseline_global_top_genre_later_20pct: r(baselineHits),
  baseline_genre: baseline,
}, null, 2));

// The visitor's taste on the page, without the model: the persona the "your taste" panel shows
// (the same weighting the model's persona input uses: src/rec/persona.rs, with the weights and
// decay of the shared contract) and the popularity ranking the shelf falls back to.
import { EVENT_KINDS, PERSONA_DECAY, PERSONA_WEIGHT } from './contract.js';
import { categoriesOf } from './catalog.js';
import { eventName, kindOf } from './history.js';

/** How much an event says about taste: its behaviour type's weight (a rating by its value). */
export function eventWeight(e) {
  return PERSONA_WEIGHT[EVENT_KINDS[kindOf(eventName(e))]];
}

/**
 * The visitor's persona: the categories that dominate the history. Each event adds its weight
 * (a purchase says more than a view, a dislike counts against), split evenly over its item's
 * categories and decayed ×PERSONA_DECAY per later event (on ml-100k the top entry then names
 * the dominant genre of the same history for most users; reports/history.md). Returns
 * [{category, weight, share}] with positive weights, strongest first.
 */
export function personaOf(items, events, top = 5) {
  const byId = new Map(items.map((it) => [it.id, it]));
  const itemEvents = events.filter((e) => e.item !== undefined && byId.has(e.item));
  const weight = new Map();
  itemEvents.forEach((e, i) => {
    const categories = categoriesOf(byId.get(e.item));
    if (!categories.length) return;
    const w = (eventWeight(e) * PERSONA_DECAY ** (itemEvents.length - 1 - i)) / categories.length;
    for (const c of categories) weight.set(c, (weight.get(c) ?? 0) + w);
  });
  const positive = [...weight.entries()].filter(([, w]) => w > 0).sort((a, b) => b[1] - a[1]);
  const total = positive.reduce((n, [, w]) => n + w, 0);
  return positive.slice(0, top).map(([category, w]) => ({ category, weight: w, share: w / total }));
}

/**
 * The ranking without a model: popularity, lifted by the categories of the visitor's recent
 * events (the newest weigh most). Each entry says why it is there.
 */
export function popularityRanking(items, events, k) {
  const seen = new Set(), disliked = new Set();
  const weight = new Map(), source = new Map();
  const positive = events.filter((e) => e.item !== undefined);
  positive.forEach((e, i) => {
    if (e.event === 'dislike') { disliked.add(e.item); return; }
    seen.add(e.item);
  });
  const byId = new Map(items.map((it) => [it.id, it]));
  const recent = positive.filter((e) => e.event !== 'dislike').slice(-10);
  recent.forEach((e, i) => {
    const item = byId.get(e.item);
    if (!item) return;
    for (const c of categoriesOf(item)) {
      weight.set(c, (weight.get(c) ?? 0) + (i + 1) / recent.length);
      source.set(c, item.id);
    }
  });
  const maxPop = Math.max(1, ...items.map((it) => Number(it.popularity) || 0));
  const scored = items.map((item, order) => {
    if (seen.has(item.id) || disliked.has(item.id)) return null;
    const pop = Number(item.popularity);
    // Without popularity figures, catalog order stands in for them.
    const base = Number.isFinite(pop) ? Math.log1p(pop) / Math.log1p(maxPop) : 1 - order / items.length;
    let lift = 0, because = null;
    for (const c of categoriesOf(item)) {
      const w = weight.get(c) ?? 0;
      if (w > lift) { lift = w; because = source.get(c); }
    }
    return { id: item.id, score: base + lift, because: because ? [because] : [], reason: because ? 'genre' : 'popular' };
  }).filter(Boolean);
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, k);
}


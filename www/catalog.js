// The catalogue contract on the page: the same rules as the Rust reader (src/data/catalog.rs),
// so the shelf, the shop and the worker accept and refuse the same catalogues. Both sides are
// tested against one table of cases (tests/fixtures/catalog-cases.json).
//
// A catalogue is a JSON array or JSONL of items {"id", "title", "text"?, "category"? (string or
// list), "genres"? (string or list), "brand"?, "price"?, "url"?, "image"?, "popularity"? (a number
// ≥ 0: how often visitors choose it)}; unknown fields are
// kept for display. A missing or empty id or title, a field of the wrong type, a duplicate id
// or an empty catalogue is an error naming the line (JSONL) or the item (JSON array).

const STRING_FIELDS = ['text', 'brand', 'url', 'image'];
const LIST_FIELDS = ['category', 'genres'];

function idOf(value, at) {
  if (typeof value === 'string') {
    if (value === '') throw new Error(`${at}: "id" is empty`);
    return value;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (value === undefined) throw new Error(`${at}: missing "id"`);
  throw new Error(`${at}: "id" must be a string, not ${JSON.stringify(value)}`);
}

function checkItem(item, at) {
  if (!item || typeof item !== 'object' || Array.isArray(item)) throw new Error(`${at}: expected a JSON object`);
  item.id = idOf(item.id, at);
  if (item.title === undefined) throw new Error(`${at}: missing "title"`);
  if (typeof item.title !== 'string') throw new Error(`${at}: "title" must be a string`);
  if (!item.title.trim()) throw new Error(`${at}: "title" is empty`);
  for (const key of STRING_FIELDS) {
    if (item[key] !== undefined && item[key] !== null && typeof item[key] !== 'string') {
      throw new Error(`${at}: "${key}" must be a string`);
    }
  }
  if (item.price !== undefined && item.price !== null && typeof item.price !== 'number') {
    throw new Error(`${at}: "price" must be a number`);
  }
  if (item.popularity === null) delete item.popularity;
  else if (item.popularity !== undefined && !(typeof item.popularity === 'number' && item.popularity >= 0)) {
    throw new Error(`${at}: "popularity" must be a number, 0 or more`);
  }
  for (const key of LIST_FIELDS) {
    const v = item[key];
    if (v === null) delete item[key];
    else if (typeof v === 'string') item[key] = [v];
    else if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      throw new Error(`${at}: "${key}" must be a string or a list of strings`);
    }
  }
  return item;
}

/** Parses a catalogue (JSON array or JSONL text); `origin` names it in errors. */
export function parseCatalog(text, origin = 'catalog') {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let entries;
  if (body.trimStart().startsWith('[')) {
    let values;
    try { values = JSON.parse(body); } catch (err) { throw new Error(`${origin}: invalid JSON: ${err.message}`); }
    if (!Array.isArray(values)) throw new Error(`${origin}: invalid JSON: not an array`);
    entries = values.map((v, i) => [v, `${origin} item ${i + 1}`]);
  } else {
    entries = [];
    body.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      const at = `${origin} line ${i + 1}`;
      try { entries.push([JSON.parse(line), at]); } catch (err) { throw new Error(`${at}: invalid JSON: ${err.message}`); }
    });
  }
  const items = entries.map(([v, at]) => checkItem(v, at));
  const seen = new Set();
  for (const item of items) {
    if (seen.has(item.id)) throw new Error(`${origin}: id ${JSON.stringify(item.id)} appears twice`);
    seen.add(item.id);
  }
  if (!items.length) throw new Error(`${origin}: the catalog has no items`);
  return items;
}

/** An item's facets (the persona's entries): its genres, else its categories; trimmed. */
export function categoriesOf(item) {
  const list = (v) => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);
  const genres = list(item.genres);
  return (genres.length ? genres : list(item.category)).map((s) => String(s).trim()).filter(Boolean);
}

/** The title to show: the catalogue's optional `display` title, else its `title`. */
export function shownTitle(item) {
  return typeof item.display === 'string' && item.display.trim() ? item.display : item.title;
}

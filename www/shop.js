// The demo shop: a film catalogue with a personalised shelf (<ranklet-shelf>) that learns from
// the visitor's clicks, cart and "not interested" — all in this browser.
//
// URL parameters: catalog (default: catalog/ml-100k.json, which ./build.sh prepares from the
// dataset, else the built-in catalog/films-small.json), model (default ../models/shop/),
// backend (auto | webgpu | cpu).
import { categoriesOf, parseCatalog, shownTitle } from './catalog.js';
import { el, hueOf, initials, sameOriginUrl } from './dom.js';

const params = new URLSearchParams(location.search);
const PAGE = 48;
const $ = (id) => document.getElementById(id);
const shelf = $('shelf');
const state = { items: [], query: '', genre: null, sort: 'popular', shown: PAGE, disliked: new Set(), clicked: new Set(), cart: new Set() };

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2200);
}

async function chooseCatalog() {
  if (params.get('catalog')) return params.get('catalog');
  // The full catalogue exists once ./build.sh has prepared the dataset.
  const full = 'catalog/ml-100k.json';
  try {
    const r = await fetch(full, { method: 'HEAD' });
    if (r.ok) return full;
  } catch { /* fall through */ }
  return 'catalog/films-small.json';
}

function visible() {
  const q = state.query.trim().toLowerCase();
  let list = state.items.filter((it) => (!state.genre || categoriesOf(it).includes(state.genre))
    && (!q || it.title.toLowerCase().includes(q) || shownTitle(it).toLowerCase().includes(q) || categoriesOf(it).some((c) => c.toLowerCase().includes(q))));
  const by = {
    popular: (a, b) => (Number(b.popularity) || 0) - (Number(a.popularity) || 0),
    newest: (a, b) => (Number(b.year) || 0) - (Number(a.year) || 0),
    title: (a, b) => shownTitle(a).localeCompare(shownTitle(b)),
  }[state.sort];
  list = list.slice().sort(by);
  return list;
}

function tile(item) {
  const li = el('li', 'tile');
  li.dataset.id = item.id;
  if (state.disliked.has(item.id)) li.classList.add('disliked');
  if (state.clicked.has(item.id)) li.classList.add('viewed');
  const open = el('button', 'open');
  open.type = 'button';
  const poster = el('span', 'poster', initials(shownTitle(item)));
  poster.style.setProperty('--hue', String(hueOf(categoriesOf(item)[0] ?? item.title)));
  poster.setAttribute('aria-hidden', 'true');
  open.append(poster, el('span', 'title', shownTitle(item)));
  open.addEventListener('click', () => act(item, 'click'));
  const meta = el('p', 'meta', [item.year, categoriesOf(item).join(', ')].filter(Boolean).join(' · '));
  const actions = el('div', 'actions');
  const cart = el('button', 'add', state.cart.has(item.id) ? 'In cart ✓' : 'Add to cart');
  cart.type = 'button';
  cart.addEventListener('click', () => act(item, 'cart'));
  const no = el('button', 'no', state.disliked.has(item.id) ? 'Not interested ✓' : 'Not interested');
  no.type = 'button';
  no.addEventListener('click', () => act(item, 'dislike'));
  actions.append(cart, no);
  li.append(open, meta, actions);
  return li;
}

function renderGrid() {
  const list = visible();
  $('grid').replaceChildren(...list.slice(0, state.shown).map(tile));
  $('grid-empty').hidden = list.length > 0;
  $('more').hidden = list.length <= state.shown;
  $('grid-title').textContent = state.genre || state.query ? `${list.length} film${list.length === 1 ? '' : 's'}` : 'All films';
}

function renderGenres() {
  const counts = new Map();
  for (const it of state.items) for (const g of categoriesOf(it)) counts.set(g, (counts.get(g) ?? 0) + 1);
  const genres = [...counts.keys()].filter((g) => g !== 'unknown').sort();
  const chip = (label, value) => {
    const b = el('button', 'chip', label);
    b.type = 'button';
    b.setAttribute('aria-pressed', String(state.genre === value));
    b.addEventListener('click', () => { state.genre = value; state.shown = PAGE; renderGenres(); renderGrid(); });
    return b;
  };
  $('genres').replaceChildren(chip('All', null), ...genres.map((g) => chip(g, g)));
}

async function act(item, event) {
  if (event === 'click') state.clicked.add(item.id);
  if (event === 'cart') state.cart.add(item.id);
  if (event === 'dislike') state.disliked.add(item.id);
  $('cart-count').textContent = String(state.cart.size);
  renderGrid();
  try {
    await shelf.record({ event, item: item.id });
    const name = shownTitle(item);
    toast({ click: `Viewed “${name}”`, cart: `“${name}” is in your cart`, dislike: `Fewer films like “${name}”` }[event]);
  } catch (err) {
    toast(`Could not remember that: ${err.message}`);
  }
}

function fmtBytes(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

async function showHistory() {
  try {
    const events = await shelf.history();
    $('p-history').textContent = `${events.length} event${events.length === 1 ? '' : 's'}`;
    // The grid's marks follow the stored history (after a reload, or "Forget me").
    state.clicked = new Set(events.filter((e) => e.event === 'click').map((e) => e.item));
    state.cart = new Set(events.filter((e) => e.event === 'cart').map((e) => e.item));
    state.disliked = new Set(events.filter((e) => e.event === 'dislike').map((e) => e.item));
    $('cart-count').textContent = String(state.cart.size);
  } catch (err) {
    $('p-history').textContent = `unreadable (${err.message})`;
  }
}

shelf.addEventListener('ranklet-ready', (e) => {
  const d = e.detail;
  if (d.source === 'model') {
    $('p-backend').textContent = `${d.backend} — ${d.backendReason}`;
    $('p-model').textContent = `${d.name}, ${fmtBytes(d.bytes)}`;
    $('p-index').textContent = `${d.items} items: ${d.embedded} embedded now, ${d.reused} from this device's cache`;
  } else {
    $('p-backend').textContent = 'none — popularity fallback';
    $('p-model').textContent = `not loaded: ${d.backendReason}`;
    $('p-index').textContent = `${d.items} items (not embedded)`;
  }
  $('p-load').textContent = `${Math.round(d.ms)} ms to a personal shelf`;
  document.body.dataset.ready = d.source;
});

shelf.addEventListener('ranklet-update', async (e) => {
  const d = e.detail;
  renderTaste(d.persona ?? [], d.muted ?? []);
  $('p-recommend').textContent = `${d.ms.toFixed(1)} ms (${d.source === 'model' ? 'model' : d.source === 'model-cold-start' ? 'popular: no history yet' : 'popularity'})`;
  await showHistory();
  renderGrid();
});

// "Your taste": the persona the shelf computed; removing an entry hides that genre from the
// shelf (and can be undone).
function renderTaste(persona, muted) {
  $('taste-empty').hidden = persona.length > 0 || muted.length > 0;
  $('taste').replaceChildren(...persona.map((p) => {
    const li = el('li', 'taste-entry');
    const bar = el('span', 'taste-bar');
    bar.style.setProperty('--share', String(p.share));
    const remove = el('button', 'taste-remove', '×');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove ${p.category} from your taste`);
    remove.addEventListener('click', () => shelf.mute(p.category));
    li.append(el('span', 'taste-name', p.category), bar, el('span', 'taste-share', `${Math.round(p.share * 100)}%`), remove);
    return li;
  }));
  const m = $('taste-muted');
  m.hidden = muted.length === 0;
  m.replaceChildren(...(muted.length ? [el('span', null, 'Hidden: ')] : []), ...muted.map((c) => {
    const b = el('button', 'taste-undo', `${c} ↺`);
    b.type = 'button';
    b.setAttribute('aria-label', `Show ${c} again`);
    b.addEventListener('click', () => shelf.mute(c, false));
    return b;
  }));
}

shelf.addEventListener('ranklet-click', (e) => {
  // The shelf records the click itself; the shop marks it in the grid too.
  state.clicked.add(e.detail.id);
});

// A search is a visitor event too: once typing pauses (or on Enter), the query is recorded and
// the shelf re-ranks with it — before any click.
let lastSearch = '';
function recordSearch() {
  clearTimeout(recordSearch.timer);
  const q = state.query.trim();
  if (q.length < 3 || q.toLowerCase() === lastSearch) return;
  lastSearch = q.toLowerCase();
  shelf.record({ event: 'search', query: q }).catch((err) => toast(`Could not remember that search: ${err.message}`));
}
$('search').addEventListener('input', (e) => {
  state.query = e.target.value;
  state.shown = PAGE;
  renderGrid();
  clearTimeout(recordSearch.timer);
  recordSearch.timer = setTimeout(recordSearch, 900);
});
$('search-form').addEventListener('submit', (e) => { e.preventDefault(); recordSearch(); });
$('sort').addEventListener('change', (e) => { state.sort = e.target.value; renderGrid(); });
$('more').addEventListener('click', () => { state.shown += PAGE; renderGrid(); });
$('forget').addEventListener('click', async () => {
  await shelf.forget();
  toast('Forgotten: your history on this device is gone');
});

async function main() {
  const catalog = await chooseCatalog();
  try {
    // URL parameters name files on this origin only (as the model's folder does).
    const r = await fetch(sameOriginUrl(catalog, 'catalogue'));
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    state.items = parseCatalog(await r.text());
  } catch (err) {
    $('grid-empty').hidden = false;
    $('grid-empty').textContent = `The catalogue ${catalog} could not be read: ${err.message}`;
    // The panel says why nothing loads, instead of "loading…" for ever.
    for (const dd of document.querySelectorAll('dd')) {
      if (dd.textContent === 'loading…') dd.textContent = 'not started: no catalogue';
    }
    return;
  }
  $('search').placeholder = `Search ${state.items.length.toLocaleString('en')} films`;
  renderGenres();
  renderGrid();
  // The shelf loads the model after the grid is on screen.
  shelf.setAttribute('backend', params.get('backend') ?? 'auto');
  shelf.setAttribute('model', params.get('model') ?? '../models/shop/');
  shelf.setAttribute('catalog', catalog);
}

main();

// <ranklet-shelf>: the embeddable recommendation shelf. A shop adds one tag and one script:
//
//   <script type="module" src="/ranklet/ranklet-shelf.js"></script>
//   <ranklet-shelf catalog="/catalog.json" model="/ranklet/models/shop/" k="8"></ranklet-shelf>
//
// Attributes: catalog (URL of a JSON array or JSONL catalog on the page's origin, docs/design.md,
// Contracts; not needed when the model's index is partitioned: its shards carry what the shelf
// shows), model (bundle folder on the page's origin), k (items shown, default 8), backend
// ("auto" | "webgpu" | "cpu"), calibrate (0–1, default 0.1, the weight chosen on the validation
// users of six models of the shop recipe pooled, reports/quality.md: how far the shelf's genre
// mix follows the visitor's history; 0 shows the model's order).
// Events (bubbling, composed): ranklet-ready {backend, backendReason, source, items, embedded,
// reused, ms}, ranklet-update {recs, source, ms}, ranklet-click {id, item, rank, because}
// (cancelable: preventDefault() stops the click from being recorded and followed),
// ranklet-error {stage: "catalog" | "model" | "record" | "recommend", message}.
// Methods: record(event), refresh(), forget(), history(). Theming: the --ranklet-* custom
// properties below; ::part(card), ::part(title), ::part(because), ::part(note).
//
// The visitor's history stays in this browser (IndexedDB). Item texts are rendered as text,
// never as HTML. When the model cannot load, the shelf ranks by popularity and the genres of
// recent events, and says so.
import { Ranklet } from './ranklet.js';
import { forgetAll, readHistory, recordEvent } from './store.js';
import { categoriesOf, parseCatalog, shownTitle } from './catalog.js';
import { el, hueOf, initials, sameOriginUrl } from './dom.js';
import { personaOf, popularityRanking } from './taste.js';

// Calibration's weight by default: chosen on ml-100k's validation users (reports/quality.md).
const DEFAULT_CALIBRATION = 0.1;

// What the visitor did, as a card says it ("Because you viewed Alien").
const did = (event, title) => ({
  like: `liked ${title}`, cart: `added ${title} to your cart`, purchase: `bought ${title}`,
}[event] ?? `viewed ${title}`);

const CSS = `
:host { display: block; font: var(--ranklet-font, 14px/1.4 system-ui, sans-serif); color: var(--ranklet-fg, #1d1d1f); }
:host([hidden]) { display: none; }
.head { display: flex; align-items: baseline; gap: .75rem; flex-wrap: wrap; margin: 0 0 .5rem; }
.head ::slotted(*) { margin: 0; }
.status { color: var(--ranklet-muted, #6e6e73); font-size: .85em; }
.note { margin: 0 0 .5rem; padding: .4rem .6rem; border-radius: var(--ranklet-radius, 10px);
  background: var(--ranklet-note-bg, #fff4d6); color: var(--ranklet-note-fg, #5c4400); font-size: .85em; }
.note:empty { display: none; }
ol { list-style: none; margin: 0; padding: 0 0 .5rem; display: grid; grid-auto-flow: column;
  grid-auto-columns: var(--ranklet-card-width, 11rem); gap: var(--ranklet-gap, .75rem); overflow-x: auto;
  scroll-snap-type: x proximity; }
li { scroll-snap-align: start; min-width: 0; }
button.card { all: unset; box-sizing: border-box; cursor: pointer; display: flex; flex-direction: column; width: 100%; height: 100%;
  background: var(--ranklet-card-bg, #fff); border: 1px solid var(--ranklet-card-border, #e3e3e8);
  border-radius: var(--ranklet-radius, 10px); overflow: hidden; transition: box-shadow .15s, transform .15s; }
button.card:hover, button.card:focus-visible { box-shadow: 0 4px 16px rgb(0 0 0 / .12); transform: translateY(-2px); }
button.card:focus-visible { outline: 2px solid var(--ranklet-accent, #0a66c2); outline-offset: 2px; }
.poster { aspect-ratio: 16 / 9; display: grid; place-items: center; color: #fff; font-weight: 700; font-size: 1.6em;
  letter-spacing: .04em; background: linear-gradient(135deg, hsl(var(--hue, 210) 55% 42%), hsl(calc(var(--hue, 210) + 40) 60% 30%)); }
.body { padding: .5rem .6rem .6rem; display: flex; flex-direction: column; gap: .2rem; }
.title { font-weight: 600; overflow-wrap: anywhere; }
.meta { color: var(--ranklet-muted, #6e6e73); font-size: .85em; }
.because { color: var(--ranklet-accent, #0a66c2); font-size: .8em; }
.empty { color: var(--ranklet-muted, #6e6e73); padding: .75rem 0; }
`;

let sheet = null;
function styles() {
  // A constructed stylesheet: allowed under a strict Content-Security-Policy (no inline <style>).
  if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
  return sheet;
}

const MUTED_KEY = 'ranklet-muted-categories';

const SAFE_URL = /^(https?:\/\/|\/|\.\/|\.\.\/)/i;

export class RankletShelf extends HTMLElement {
  static observedAttributes = ['catalog', 'model', 'k', 'backend', 'calibrate', 'only'];

  #ranklet = null;
  #items = [];
  #byId = new Map();
  #source = 'loading';
  #recs = [];
  #queue = Promise.resolve();
  #generation = 0;
  #started = false;
  #scheduled = false;
  #mutedFallback = null;
  #persona = [];
  #onlyNote = '';

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.adoptedStyleSheets = [styles()];
    const head = el('div', 'head');
    head.append(document.createElement('slot'), (this.statusEl = el('span', 'status', 'loading…')));
    this.statusEl.setAttribute('part', 'status');
    this.noteEl = el('p', 'note');
    this.noteEl.setAttribute('part', 'note');
    this.noteEl.setAttribute('role', 'status');
    this.listEl = el('ol');
    this.listEl.setAttribute('aria-label', 'Recommendations');
    root.append(head, this.noteEl, this.listEl);
  }

  /** The Ranklet (model in its worker), or null while loading or when it could not load. */
  get ranklet() { return this.#ranklet; }
  /** The catalog's items. */
  get items() { return this.#items; }
  /** "loading", "model" (personalised) or "popularity" (the fallback). */
  get source() { return this.#source; }
  /** What the shelf shows now: [{id, score, because, reason?}]. */
  get recommendations() { return this.#recs; }
  /** The visitor's persona after the last redraw: [{category, weight, share}]. */
  get persona() { return this.#persona; }
  get k() { return Math.max(1, Math.min(100, Number.parseInt(this.getAttribute('k') ?? '8', 10) || 8)); }
  /**
   * Calibration's weight (0–1): how far the shelf's genre mix follows the visitor's history
   * (Steck's re-ranking of the model's best 100, its first 5 kept in place). Default 0.2, the
   * weight chosen on ml-100k's validation users (reports/quality.md); 0 turns it off.
   */
  get calibrate() {
    const v = Number.parseFloat(this.getAttribute('calibrate') ?? String(DEFAULT_CALIBRATION));
    return Number.isFinite(v) ? Math.max(0, Math.min(1, v)) : DEFAULT_CALIBRATION;
  }
  /**
   * `only="new"`: a "new arrivals" shelf — only the catalogue items the model never trained on
   * (ids outside the bundle's items, or held out of its training), in the model's order among
   * them, each placed by the bundle's neighbour mix and lifted by the catalogue's popularity
   * figures where it has them (reports/coldstart.md measures that order: the median new target
   * ranks 18th of 168 held-out films with figures, 25th without, 84th at random); not calibrated,
   * and not with a partitioned index.
   * Absent: the whole catalogue.
   */
  get only() { return this.getAttribute('only') === 'new' ? 'new' : null; }
  item(id) { return this.#byId.get(String(id)); }

  connectedCallback() {
    if (!this.#started && this.#configured()) this.#schedule();
  }

  // A catalogue, or a model alone (whose index may be partitioned: no catalogue needed).
  #configured() { return this.hasAttribute('catalog') || this.hasAttribute('model'); }

  attributeChangedCallback(name, before, after) {
    if (before === after || !this.isConnected) return;
    if (name === 'k' || name === 'calibrate' || name === 'only') { if (this.#started) this.refresh(); return; }
    if (this.#configured()) this.#schedule();
  }

  // Attributes set one after another (catalog, model, backend) start one load, not three.
  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => { this.#scheduled = false; this.#started = true; this.#start(); });
  }

  #emit(type, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable }));
  }

  #error(stage, err) {
    const message = String(err?.message ?? err);
    this.#emit('ranklet-error', { stage, message });
    return message;
  }

  async #start() {
    const generation = ++this.#generation;
    this.#ranklet?.close();
    this.#ranklet = null;
    this.#source = 'loading';
    this.noteEl.textContent = '';
    const t0 = performance.now();
    const catalogUrl = this.getAttribute('catalog');
    if (!catalogUrl) return this.#startPartitioned(generation, t0);
    // The catalogue's text goes to the worker as it came (a string is cheaper to send than
    // the parsed items, and the worker reads it in one pass).
    let catalogText;
    try {
      // The catalog attribute names a file on the page's origin; another origin is refused.
      const response = await fetch(sameOriginUrl(catalogUrl, 'catalog'));
      if (!response.ok) throw new Error(`HTTP ${response.status} for ${catalogUrl}`);
      catalogText = await response.text();
      this.#items = parseCatalog(catalogText);
    } catch (err) {
      if (generation !== this.#generation) return;
      const message = this.#error('catalog', new Error(`catalog: ${err.message}`));
      this.statusEl.textContent = '';
      this.noteEl.textContent = `Recommendations are unavailable: ${message}`;
      this.#items = [];
      this.listEl.replaceChildren();
      return;
    }
    if (generation !== this.#generation) return;
    this.#byId = new Map(this.#items.map((it) => [it.id, it]));
    // Popular items at once; the personalised shelf replaces them when the model is ready.
    await this.refresh();
    const model = this.getAttribute('model');
    let ready;
    try {
      if (!model) throw new Error('the model attribute is missing');
      this.statusEl.textContent = 'loading the model…';
      const ranklet = await Ranklet.load({ model, backend: this.getAttribute('backend') ?? 'auto' });
      if (generation !== this.#generation) { ranklet.close(); return; }
      const indexed = await ranklet.index(catalogText, {
        onProgress: ({ embedded, toEmbed }) => { this.statusEl.textContent = `getting to know the catalogue… ${embedded} / ${toEmbed}`; },
      });
      if (generation !== this.#generation) { ranklet.close(); return; }
      this.#ranklet = ranklet;
      this.#source = 'model';
      ready = { backend: ranklet.backend, backendReason: ranklet.backendReason, bytes: ranklet.bytes, name: ranklet.name, cacheNote: indexed.cacheNote,
        items: indexed.items, embedded: indexed.embedded, reused: indexed.reused };
    } catch (err) {
      if (generation !== this.#generation) return;
      const message = this.#error('model', err);
      this.#source = 'popularity';
      this.noteEl.textContent = `Personalised ranking is off (${message}). Showing popular titles and your recent genres instead.`;
      ready = { backend: null, backendReason: message, items: this.#items.length, embedded: 0, reused: 0 };
    }
    await this.refresh();
    this.#emit('ranklet-ready', { ...ready, source: this.#source, ms: performance.now() - t0 });
  }

  // No catalogue: the model's index must be partitioned. The shelf starts from the popular
  // shard's items and learns each item it shows (and each history item it names) from the
  // results, which carry their catalogue objects.
  async #startPartitioned(generation, t0) {
    this.#items = [];
    this.#byId = new Map();
    let ready;
    try {
      const model = this.getAttribute('model');
      this.statusEl.textContent = 'loading the model…';
      const ranklet = await Ranklet.load({ model, backend: this.getAttribute('backend') ?? 'auto' });
      if (generation !== this.#generation) { ranklet.close(); return; }
      if (!ranklet.partitioned) {
        ranklet.close();
        const why = ranklet.note ?? (ranklet.indexItems ? `${model} has an unpartitioned index` : `${model} has no index`);
        throw new Error(`the catalog attribute is missing (only a model with a partitioned index, ranklet index --partitions, needs none: ${why})`);
      }
      await ranklet.index(null);
      this.#ranklet = ranklet;
      this.#source = 'model';
      this.#items = ranklet.partitioned.popular;
      for (const item of this.#items) this.#learn(item);
      ready = { backend: ranklet.backend, backendReason: ranklet.backendReason, bytes: ranklet.bytes, name: ranklet.name,
        items: ranklet.indexItems, embedded: 0, reused: 0, partitioned: true };
    } catch (err) {
      if (generation !== this.#generation) return;
      const message = this.#error('model', err);
      this.#source = 'popularity';
      this.statusEl.textContent = '';
      this.noteEl.textContent = `Recommendations are unavailable: ${message}`;
      this.listEl.replaceChildren();
      return;
    }
    await this.refresh();
    this.#emit('ranklet-ready', { ...ready, source: this.#source, ms: performance.now() - t0 });
  }

  // Most items a catalogue-less shelf keeps for naming and rendering (learned from results).
  static #LEARNED = 5000;

  #learn(item) {
    if (!item || item.id === undefined) return;
    const id = String(item.id);
    // A known item that only had its id (a history item stored before) gains its data.
    if (this.#byId.has(id) && this.#byId.get(id).title !== undefined) return;
    this.#byId.set(id, item);
    if (this.#byId.size > RankletShelf.#LEARNED) this.#byId.delete(this.#byId.keys().next().value);
  }

  /** Recomputes and redraws the shelf; resolves to what it shows. Calls run one at a time. */
  refresh() {
    const run = this.#queue.then(() => this.#refresh());
    this.#queue = run.catch(() => {});
    return run;
  }

  async #refresh() {
    const t0 = performance.now();
    let events = [];
    try {
      events = await (this.#ranklet ? this.#ranklet.history() : readHistory());
    } catch (err) {
      this.#error('recommend', new Error(`the local history could not be read (${err.message})`));
    }
    let recs;
    let source = this.#source;
    // With a partitioned index the shelf has no catalogue: any item event may be one the model
    // knows (its row is on this device), and results teach the shelf their items.
    const partitioned = Boolean(this.#ranklet?.partitioned);
    // Clicks, carts… on known items, and search queries: what the model ranks after.
    const signals = events.filter((e) => (e.item !== undefined && e.event !== 'dislike' && (partitioned || this.#byId.has(e.item))) || e.event === 'search');
    const muted = new Set(this.#mutedFallback ?? this.muted);
    const only = this.#onlyIds(partitioned);
    const allowed = (id) => !categoriesOf(this.#byId.get(id) ?? {}).some((c) => muted.has(c)) && (!only || only.has(id));
    // Muted categories are filtered out afterwards: with any, rank the whole catalogue (a
    // muted genre can fill the top of a ranking; partitioned: the ranked shards' items).
    const ask = muted.size ? (partitioned ? 1000 : this.#items.length) : this.k;
    if (only && !only.size) {
      recs = []; // no new arrivals (or no model to tell them): an empty shelf, said so below
    } else if (this.#ranklet && signals.length) {
      try {
        // Calibration re-ranks a shelf-sized list (its greedy choice grows with k × 100); the
        // whole-catalogue ranking asked for when genres are muted keeps the model's order. New
        // arrivals: the model's order among them (candidates), uncalibrated.
        const ranked = await this.#ranklet.recommend({ k: ask, muted: [...muted], calibrate: !only && ask <= 100 ? this.calibrate : 0,
          candidates: only ? [...only] : undefined });
        if (partitioned) for (const r of ranked) [r.item, ...(r.becauseItems ?? [])].forEach((it) => this.#learn(it));
        recs = ranked.filter((r) => allowed(r.id)).slice(0, this.k);
      } catch (err) {
        const message = this.#error('recommend', err);
        this.noteEl.textContent = `Personalised ranking failed (${message}). Showing popular titles instead.`;
      }
    }
    if (!recs) {
      // Cold start (no history yet) or no model: popularity and recent genres.
      const pool = only ? this.#items.filter((it) => only.has(it.id)) : this.#items;
      recs = popularityRanking(pool, events, ask).filter((r) => allowed(r.id)).slice(0, this.k);
      if (source === 'model') source = 'model-cold-start';
    }
    this.#recs = recs;
    // The model's own persona input where it has one (click confidences included); else the
    // same weighting computed here.
    let persona = null;
    if (!partitioned && this.#ranklet?.personaFacets?.length && source === 'model') {
      try {
        persona = await this.#ranklet.persona({ muted: [...muted] });
      } catch (err) {
        this.#error('persona', err);
      }
    }
    // Partitioned: the items the shelf has learned stand in for the catalogue.
    const known = partitioned ? [...this.#byId.values()] : this.#items;
    this.#persona = (persona ?? personaOf(known, events)).filter((p) => !muted.has(p.category));
    const ms = performance.now() - t0;
    this.#render(recs);
    this.statusEl.textContent = this.#source === 'loading' ? this.statusEl.textContent : '';
    this.#emit('ranklet-update', { recs, source, ms, history: events.length, persona: this.#persona, muted: [...muted] });
    return recs;
  }

  // The ids `only="new"` restricts the shelf to: the model's new items (an empty set while it
  // loads, when it could not load, or with a partitioned index, each said in the note); null for
  // the whole catalogue.
  #onlyIds(partitioned) {
    const only = this.getAttribute('only');
    let note = '', ids = null;
    if (only === 'new') {
      ids = new Set(this.#ranklet && !partitioned ? this.#ranklet.newIds : []);
      if (partitioned) note = 'New arrivals need the catalogue attribute (a partitioned index does not say which items are new).';
      else if (!this.#ranklet && this.#source === 'popularity') note = 'New arrivals need the model, which could not load.';
    } else if (only !== null) {
      note = `only="${only}" is not a shelf this widget knows (only="new"): showing the whole catalogue.`;
    }
    // This shelf's own note replaces its previous one (and goes when the attribute does).
    if (this.#onlyNote && this.noteEl.textContent === this.#onlyNote) this.noteEl.textContent = '';
    if (note) this.noteEl.textContent = note;
    this.#onlyNote = note;
    return ids;
  }

  #because(rec) {
    // `reasons`: the model's own attribution, strongest first (the events whose removal lowers
    // the item's score the most), each with what the visitor did.
    const reasons = rec.reasons ?? [...rec.because.map((id) => ({ id, event: 'like' })), ...(rec.becauseQueries ?? []).map((query) => ({ query }))];
    if (rec.reason === 'genre') {
      const liked = reasons.map((r) => this.#byId.get(r.id)).filter(Boolean).map(shownTitle);
      if (liked.length) return `Because you liked ${liked[0]} (same genre)`;
    }
    const parts = reasons.map((r) => {
      if (r.query !== undefined) return `searched “${r.query}”`;
      const item = this.#byId.get(r.id);
      return item ? did(r.event, shownTitle(item)) : null;
    }).filter(Boolean).slice(0, 2);
    // A new arrival has no visitors yet: it is not called popular.
    if (!parts.length) return this.only ? 'New arrival' : 'Popular with other visitors';
    return `Because you ${parts.join(' and ')}`;
  }

  #render(recs) {
    if (!recs.length) {
      const none = !this.only ? 'Nothing left to recommend.'
        : this.#source === 'loading' ? 'Finding the new arrivals…' : 'No new arrivals.';
      this.listEl.replaceChildren(el('li', 'empty', this.#items.length ? none : 'No items.'));
      return;
    }
    const rows = recs.map((rec, rank) => {
      const item = this.#byId.get(rec.id);
      const li = el('li');
      const card = el('button', 'card');
      card.type = 'button';
      card.setAttribute('part', 'card');
      card.dataset.id = rec.id;
      const poster = el('span', 'poster', initials(shownTitle(item)));
      poster.style.setProperty('--hue', String(hueOf(categoriesOf(item)[0] ?? item.title)));
      poster.setAttribute('aria-hidden', 'true');
      const body = el('span', 'body');
      const title = el('span', 'title', shownTitle(item));
      title.setAttribute('part', 'title');
      const meta = [item.year, categoriesOf(item).slice(0, 3).join(', '), item.brand].filter((v) => v !== undefined && v !== null && v !== '').join(' · ');
      const because = el('span', 'because', this.#because(rec));
      because.setAttribute('part', 'because');
      body.append(title, el('span', 'meta', meta), because);
      card.append(poster, body);
      card.addEventListener('click', () => this.#clicked(rec, rank));
      li.append(card);
      return li;
    });
    this.listEl.replaceChildren(...rows);
  }

  async #clicked(rec, rank) {
    const item = this.#byId.get(rec.id);
    const go = this.#emit('ranklet-click', { id: rec.id, item, rank, because: rec.because }, true);
    if (!go) return;
    await this.record({ event: 'click', item: rec.id });
    if (typeof item.url === 'string' && SAFE_URL.test(item.url)) location.assign(new URL(item.url, document.baseURI));
  }

  /** Records a visitor event ({event, item | query}) in the local history and redraws. */
  async record(event) {
    let result;
    try {
      result = await (this.#ranklet ? this.#ranklet.record(event) : recordEvent(event, 1000));
    } catch (err) {
      this.#error('record', err); // a malformed event
      throw err;
    }
    if (!result.saved) this.#error('record', new Error(result.note)); // disk full: kept in memory
    return this.refresh();
  }

  /** Categories the visitor removed from their persona: never on the shelf. */
  get muted() {
    try { return JSON.parse(localStorage.getItem(MUTED_KEY) ?? '[]'); } catch { return []; }
  }

  /** Removes (or, with `on = false`, restores) a category from the visitor's persona, and redraws. */
  mute(category, on = true) {
    const muted = new Set(this.muted);
    if (on) muted.add(String(category)); else muted.delete(String(category));
    try { localStorage.setItem(MUTED_KEY, JSON.stringify([...muted])); } catch { /* storage full: this visit only */ this.#mutedFallback = [...muted]; }
    return this.refresh();
  }

  /** The stored events, oldest first. */
  async history() {
    return this.#ranklet ? this.#ranklet.history() : readHistory();
  }

  /** Wipes this visitor's local state (history, cached vectors) and redraws. */
  async forget() {
    if (this.#ranklet) await this.#ranklet.forget();
    else await forgetAll();
    this.#mutedFallback = null;
    try { localStorage.removeItem(MUTED_KEY); } catch { /* nothing stored */ }
    return this.refresh();
  }
}

if (!customElements.get('ranklet-shelf')) customElements.define('ranklet-shelf', RankletShelf);

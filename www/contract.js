// GENERATED from src/contracts/ (contract_module) — do not edit by hand; a test keeps it
// equal to the Rust side. Regenerate: RANKLET_WRITE_CONTRACT=1 cargo test --features fixtures contract_js

/** Behaviour types in the model's row order (the behaviour-type embedding's rows). */
export const EVENT_KINDS = Object.freeze(["click", "view", "cart", "purchase", "like", "dislike", "search"]);

/** Every accepted `event` name (aliases included) → its behaviour-type row. */
export const EVENT_KIND = Object.freeze({ click: 0, view: 1, cart: 2, add_to_cart: 2, purchase: 3, buy: 3, like: 4, dislike: 5, not_interested: 5, search: 6 });

/** The names `record()` accepts: every name above and "rating" (with a `value`). */
export const EVENT_TYPES = Object.freeze(["click", "view", "cart", "add_to_cart", "purchase", "buy", "like", "dislike", "not_interested", "search", "rating"]);

/** A rating (0..max) as feedback: ≥ likeAt is a like, ≤ dislikeAt a dislike, else a click. */
export const RATING = Object.freeze({ event: "rating", likeAt: 4, dislikeAt: 2, max: 5 });

/** How much an event of each behaviour type says about taste (the persona's weights). */
export const PERSONA_WEIGHT = Object.freeze({ click: 1, view: 0.5, cart: 2, purchase: 3, like: 2, dislike: -2, search: 0 });

/** Decay of an event's persona weight per later event. */
export const PERSONA_DECAY = 0.98;

/** Scene vocabularies in row order (row 0: unknown). */
export const PAGE_TYPES = Object.freeze(["unknown", "home", "product", "search", "category", "cart"]);
export const DEVICE_CLASSES = Object.freeze(["unknown", "desktop", "mobile", "tablet"]);

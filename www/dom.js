// Small DOM helpers shared by the widget and the demo shop. Catalogue texts are data: they are
// always set as text, never parsed as HTML.

/** A stable hue (0–359) for a text: the poster colour of a category. */
export function hueOf(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** Up to two initials of a title, for its poster. */
export function initials(title) {
  const words = title.replace(/[^\p{L}\p{N} ]/gu, ' ').split(/\s+/).filter((w) => w && !/^(the|a|an|of|and)$/i.test(w));
  return (words.slice(0, 2).map((w) => w[0]).join('') || title.slice(0, 2)).toUpperCase();
}

/** An element with a class and text content (never innerHTML: catalogue texts are data). */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * `value` (absolute, or relative to `base`) as a URL on this page's origin; another origin is
 * refused with an error naming `what` — the visitor's page fetches nothing from elsewhere.
 */
export function sameOriginUrl(value, what, base = document.baseURI) {
  const url = new URL(value, base);
  if (url.origin !== location.origin) throw new Error(`${what} ${value}: refusing a URL on another origin`);
  return url;
}

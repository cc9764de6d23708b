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

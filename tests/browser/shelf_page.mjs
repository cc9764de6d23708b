// Page-side helper of the browser tests, imported inside page.evaluate (the test server serves
// the repository): a <ranklet-shelf> with `attributes` on the page, resolved once it is ready.
export async function addShelf(attributes) {
  await import('/www/ranklet-shelf.js');
  const el = document.createElement('ranklet-shelf');
  const ready = new Promise((resolve) => el.addEventListener('ranklet-ready', resolve, { once: true }));
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  document.body.append(el);
  await ready;
  return el;
}

// The host page listening to <ranklet-shelf>'s events (an external file: the page runs under a
// strict Content-Security-Policy without 'unsafe-inline').
const log = document.getElementById('log');
for (const type of ['ranklet-ready', 'ranklet-update', 'ranklet-click', 'ranklet-error']) {
  document.addEventListener(type, (e) => {
    const d = e.detail;
    const text = type === 'ranklet-update' ? `${d.recs.length} items (${d.source}), ${d.ms.toFixed(1)} ms`
      : type === 'ranklet-ready' ? `${d.source} on ${d.backend ?? 'no backend'} in ${Math.round(d.ms)} ms`
        : type === 'ranklet-click' ? `clicked ${d.item.display ?? d.item.title} (rank ${d.rank + 1})`
          : `${d.stage}: ${d.message}`;
    const li = document.createElement('li');
    li.textContent = `${type}: ${text}`;
    log.prepend(li);
    document.body.dataset[type.replace('ranklet-', '')] = String(Number(document.body.dataset[type.replace('ranklet-', '')] ?? 0) + 1);
  });
}

/**
 * Hash routing (`#/tenants/<id>`): the server only ever serves `/`, and links work with the
 * keyboard and the back button. A page is `render(main, params)` and may return a function that
 * stops what it started (timers, event streams). A query after the path (`#/…/trace?subject=x`)
 * reaches the page as `params.query` (URLSearchParams), so a search can be bookmarked and gone back to.
 */
const routes = [];
let stopPage = null;
let generation = 0;

export function route(pattern, render) {
  const names = [];
  const regex = new RegExp(
    `^${pattern.replace(/:([a-zA-Z]+)/g, (_m, name) => {
      names.push(name);
      return '([^/]+)';
    })}$`,
  );
  routes.push({ regex, names, render });
}

export function href(...segments) {
  return `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

/** A hash with a query of the non-empty values: `withQuery(href('x'), { a: '1', b: '' })` is `#/x?a=1`. */
export function withQuery(hash, values) {
  const query = new URLSearchParams(
    Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  );
  const text = query.toString();
  return text ? `${hash}?${text}` : hash;
}

export function go(hash) {
  if (location.hash === hash) void show();
  else location.hash = hash;
}

/** Renders the page of the current hash into `main`. */
export async function show(main = document.getElementById('main')) {
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  if (stopPage) stopPage();
  stopPage = null;
  const mine = ++generation;
  const [current, search = ''] = (location.hash.replace(/^#/, '') || '/').split(/\?(.*)/s);
  for (const { regex, names, render } of routes) {
    const match = regex.exec(current);
    if (!match) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
    params.query = new URLSearchParams(search);
    main.replaceChildren();
    const stop = await render(main, params);
    if (typeof stop !== 'function') return;
    if (mine === generation) stopPage = stop;
    else stop(); // another page was asked for meanwhile
    return;
  }
  location.hash = '#/';
}

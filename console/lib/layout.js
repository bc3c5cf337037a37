/** The header's breadcrumbs and the page heading. */
import { h, replace } from './dom.js';

/** crumbs: [[text, href?], …]; the last one is the current page. */
export function breadcrumbs(crumbs) {
  const nav = document.getElementById('breadcrumbs');
  const items = crumbs.map(([text, link], i) =>
    h(
      'li',
      {},
      link && i < crumbs.length - 1 ? h('a', { href: link }, text) : h('span', { 'aria-current': 'page' }, text),
    ),
  );
  replace(nav, h('ol', {}, items));
  document.title = `${crumbs[crumbs.length - 1][0]} · Mailroom`;
}

/** A page's heading, focused so that keyboard and screen-reader users start at the new page. */
export function heading(main, text, ...extra) {
  const title = h('h1', { tabindex: '-1' }, text);
  main.append(h('div', { class: 'page-head' }, title, ...extra));
  title.focus();
  return title;
}

/** A message for a page that could not load. */
export function failure(main, err) {
  main.append(h('p', { class: 'error', role: 'alert' }, err.message));
}

/**
 * A list table read from the API a page at a time, newest first, with a button for the older
 * ones: the audit log, the trace's results and a destination's mail. Rows only ever come from
 * `row(item)` (built with `h`, so values go in as text).
 *
 *   const list = pagedTable({
 *     label: 'Audit log', headings: ['When', …], more: 'Older entries', empty: 'Nothing was changed yet.',
 *     fetchPage: async (cursor) => { const p = await api(…); return { items: p.entries, next: p.next }; },
 *     row: (e) => h('tr', …),
 *   });
 *   main.append(list.problem, list.empty, list.table, list.more);
 *   await list.load(null);
 *
 * `fetchPage(cursor)` answers `{ items, next }`, `next` null on the last page. `load(null)` reads
 * the newest page again in place of the rows shown. With `empty` text, the table is hidden while
 * it has no row and the text shown instead. A failure is shown in `problem` (an alert) unless
 * `onError(err)` takes it; `onStart()` runs before each read, `onPage({ shown, next })` after each.
 */
import { h, listTable } from './dom.js';

export function pagedTable({ label, headings, more: moreLabel, empty: emptyText = null, fetchPage, row, ...hooks }) {
  const table = listTable(label, headings, []);
  const rows = table.querySelector('tbody');
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const empty = h('p', { class: 'empty', hidden: true }, emptyText ?? '');
  const more = h('button', { type: 'button', hidden: true }, moreLabel);
  let next = null;

  /** Shows the table, or the empty text while the table has no row. */
  function settle() {
    if (emptyText === null) return;
    empty.hidden = rows.children.length > 0;
    table.hidden = rows.children.length === 0;
  }

  async function load(cursor) {
    more.disabled = true;
    hooks.onStart?.();
    try {
      const page = await fetchPage(cursor);
      if (cursor === null) rows.replaceChildren();
      for (const item of page.items) rows.append(row(item));
      next = page.next;
      more.hidden = next === null;
      problem.hidden = true;
      hooks.onPage?.({ shown: rows.children.length, next });
    } catch (err) {
      if (hooks.onError) hooks.onError(err);
      else {
        problem.textContent = err.message;
        problem.hidden = false;
      }
    } finally {
      more.disabled = false;
      settle();
    }
  }
  more.addEventListener('click', () => void load(next));

  return { table, rows, problem, empty, more, load, settle };
}

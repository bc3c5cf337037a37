/**
 * Message trace: search a tenant's inbound and outbound mail (the API's filters), newest first,
 * 50 a page with "Older messages" following the API's cursor. The filters live in the address
 * (`#/tenants/<id>/trace?subject=…`), so a search is bookmarked, shared and gone back to.
 */
import { api, path, withParams } from '../lib/api.js';
import { h, replace, when } from '../lib/dom.js';
import { clearErrors, generalError, input, select, showApiError } from '../lib/forms.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { pagedTable } from '../lib/paged-table.js';
import { go, href, withQuery } from '../lib/router.js';
import { statusBadge } from '../lib/words.js';

/** The search's text filters: [API name, label, hint]. */
const TEXT_FILTERS = [
  ['messageId', 'Message-ID', 'As in the header, with or without < >.'],
  ['address', 'Any address', 'The sender or any recipient.'],
  ['subject', 'Subject contains', null],
  ['from', 'From', null],
  ['to', 'To', null],
];

const STATUSES = [
  ['', 'Any status'],
  ['routed', 'Inbound: routed'],
  ['unrouted', 'Inbound: unrouted'],
  ['quarantined', 'Inbound: quarantined'],
  ['duplicate', 'Inbound: duplicate'],
  ['queued', 'Outbound: queued'],
  ['sending', 'Outbound: sending'],
  ['deferred', 'Outbound: deferred'],
  ['sent', 'Outbound: sent'],
  ['failed', 'Outbound: failed'],
];

/** Every query field the page reads and writes. */
const FIELDS = [...TEXT_FILTERS.map(([name]) => name), 'destinationId', 'serverId', 'status', 'since', 'until'];

/** `<input type=datetime-local>` speaks local time without a zone; the API wants ISO 8601 with one. */
function toIso(local) {
  if (!local) return '';
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? local : date.toISOString();
}

function toLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** A trace hit as a table row, its subject linking to the message's page. */
export function hitRow(tenantId, m, serverName = new Map()) {
  return h(
    'tr',
    { 'data-hit': m.id },
    h('td', {}, when(m.at)),
    h('td', {}, m.kind === 'inbound' ? 'In' : 'Out'),
    h('td', {}, m.from ?? '—'),
    h('td', {}, m.to.join(', ') || '—'),
    h('td', {}, h('a', { href: href('tenants', tenantId, 'trace', m.kind, m.id) }, m.subject || '(no subject)')),
    h('td', { class: 'status' }, statusBadge(m.status)),
    h('td', {}, serverName.get(m.serverId) ?? ''),
  );
}

export const HIT_HEADINGS = ['When', 'Direction', 'From', 'To', 'Subject', 'Status', 'E-mail server'];

export async function renderTrace(main, { tenantId, query }) {
  const base = path('tenants', tenantId);
  let tenant, servers, destinations;
  try {
    [tenant, { servers }, { destinations }] = await Promise.all([
      api('GET', base),
      api('GET', `${base}/servers`),
      api('GET', `${base}/destinations`),
    ]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Message trace']]);
    failure(main, err);
    return;
  }
  breadcrumbs([['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], ['Message trace']]);
  heading(main, 'Message trace');
  const serverName = new Map(servers.map((s) => [s.id, s.name]));
  const given = Object.fromEntries(FIELDS.map((f) => [f, query.get(f) ?? '']));

  const general = generalError();
  const form = h(
    'form',
    { novalidate: true, class: 'search', role: 'search', 'aria-label': 'Search the trace' },
    h(
      'div',
      { class: 'filters' },
      TEXT_FILTERS.map(([name, label, hint]) => input({ label, name, value: given[name], hint })),
      select({
        label: 'Destination',
        name: 'destinationId',
        value: given.destinationId,
        options: [['', 'Any destination'], ...destinations.map((d) => [d.id, `${d.name} (${d.address})`])],
      }),
      select({
        label: 'E-mail server',
        name: 'serverId',
        value: given.serverId,
        options: [['', 'Any e-mail server'], ...servers.map((s) => [s.id, s.name])],
      }),
      select({ label: 'Status', name: 'status', value: given.status, options: STATUSES }),
      input({ label: 'Since', name: 'since', type: 'datetime-local', value: toLocalInput(given.since) }),
      input({ label: 'Until', name: 'until', type: 'datetime-local', value: toLocalInput(given.until) }),
    ),
    general,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Search'),
      h('button', { type: 'button', onclick: () => go(href('tenants', tenantId, 'trace')) }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = {};
    for (const name of FIELDS) {
      const raw = form.elements.namedItem(name).value.trim();
      values[name] = name === 'since' || name === 'until' ? toIso(raw) : raw;
    }
    go(withQuery(href('tenants', tenantId, 'trace'), values));
  });

  const results = h('section', { 'aria-labelledby': 'results-title' });
  main.append(form, results);

  const status = h('p', { role: 'status', class: 'hint' });
  const list = pagedTable({
    label: 'Trace results',
    headings: HIT_HEADINGS,
    more: 'Older messages',
    fetchPage: async (cursor) => {
      const page = await api('GET', withParams(`${base}/trace`, { ...given, ...(cursor && { cursor }) }));
      return { items: page.messages, next: page.next };
    },
    row: (m) => hitRow(tenantId, m, serverName),
    onStart: () => clearErrors(form, general),
    onPage: ({ shown, next }) => {
      status.textContent =
        shown === 0
          ? 'No message matches.'
          : `${shown} message${shown === 1 ? '' : 's'} shown${next === null ? '' : ', older ones follow'}.`;
    },
    onError: (err) => showApiError(form, general, err),
  });

  replace(
    results,
    h('h2', { id: 'results-title' }, 'Messages, newest first'),
    status,
    h('div', { class: 'table-wrap' }, list.table),
    list.more,
  );
  await list.load(null);
}

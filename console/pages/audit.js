/**
 * The audit log, newest first: who changed what, when. An administrator sees every tenant's
 * entries (`#/audit`, optionally one tenant's); a tenant's page (`#/tenants/<id>/audit`) shows that
 * tenant's, which is all a tenant's token may read. Secrets appear only as changed/unchanged:
 * the engine never answers more.
 */
import { api, path, withParams } from '../lib/api.js';
import { h, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { select } from '../lib/forms.js';
import { pagedTable } from '../lib/paged-table.js';
import { go, href, withQuery } from '../lib/router.js';

function actorWords(actor) {
  if (actor.kind === 'token') return actor.tokenId ? `${actor.name} (token ${actor.tokenId})` : actor.name;
  return actor.name;
}

function value(v) {
  if (v === null || v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `{before, after}` as "field: old → new" lines; anything else as its fields. */
function detailList(detail) {
  const entries = Object.entries(detail ?? {});
  if (entries.length === 0) return '';
  const { before, after, ...rest } = detail;
  const items = [];
  if (before || after) {
    const fields = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
    for (const f of fields) {
      items.push(h('li', {}, h('code', {}, f), `: ${value(before?.[f])} → ${value(after?.[f])}`));
    }
  }
  for (const [k, v] of Object.entries(rest)) {
    if (k === 'secrets' && v && typeof v === 'object') {
      for (const [secret, state] of Object.entries(v)) items.push(h('li', {}, h('code', {}, secret), `: ${state}`));
    } else {
      items.push(h('li', {}, h('code', {}, k), `: ${value(v)}`));
    }
  }
  return h('ul', { class: 'audit-detail' }, items);
}

export async function renderAudit(main, { tenantId: pageTenant, query }) {
  // A tenant's page shows its own; the administrator's page may be narrowed to one (`#/audit?tenantId=`).
  const tenantId = pageTenant ?? (query.get('tenantId') || undefined);
  let tenant = null;
  try {
    tenant = pageTenant ? await api('GET', path('tenants', pageTenant)) : null;
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Audit log']]);
    failure(main, err);
    return;
  }
  breadcrumbs(
    tenant
      ? [['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], ['Audit log']]
      : [['Tenants', '#/'], ['Audit log']],
  );
  heading(main, tenant ? `${tenant.name}: audit log` : 'Audit log');
  const names = new Map();
  if (!tenant) {
    const { tenants } = await api('GET', '/tenants').catch(() => ({ tenants: [] }));
    for (const t of tenants) names.set(t.id, t.name);
    main.append(
      select({
        label: 'Tenant',
        name: 'tenantId',
        value: tenantId ?? '',
        options: [['', 'All tenants'], ...tenants.map((t) => [t.id, t.name])],
        onchange: (event) => go(withQuery('#/audit', { tenantId: event.currentTarget.value })),
      }),
    );
  }
  const list = pagedTable({
    label: 'Audit log',
    headings: tenant
      ? ['When', 'Who', 'Action', 'Target', 'What']
      : ['When', 'Tenant', 'Who', 'Action', 'Target', 'What'],
    more: 'Older entries',
    empty: 'Nothing was changed yet.',
    fetchPage: async (cursor) => {
      const page = await api('GET', withParams('/audit', { tenantId, cursor }));
      return { items: page.entries, next: page.next };
    },
    row: (e) =>
      h(
        'tr',
        { 'data-audit': e.id },
        h('td', {}, when(e.at)),
        tenant ? null : h('td', {}, e.tenantId ? (names.get(e.tenantId) ?? e.tenantId) : '—'),
        h('td', {}, actorWords(e.actor)),
        h('td', {}, e.action),
        h('td', {}, e.target.id ? `${e.target.kind} ${e.target.id}` : e.target.kind),
        h('td', {}, detailList(e.detail)),
      ),
  });
  main.append(list.problem, list.empty, list.table, list.more);
  await list.load(null);
}

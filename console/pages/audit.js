/**
 * The audit log, newest first: who changed what, when. An administrator sees every tenant's
 * entries (`#/audit`, optionally one tenant's); a tenant's page (`#/tenants/<id>/audit`) shows that
 * tenant's, which is all a tenant's token may read. Secrets appear only as changed/unchanged:
 * the engine never answers more.
 */
import { api, path, withParams } from '../lib/api.js';
import { h, listTable, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { select } from '../lib/forms.js';
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
  const table = listTable(
    'Audit log',
    tenant ? ['When', 'Who', 'Action', 'Target', 'What'] : ['When', 'Tenant', 'Who', 'Action', 'Target', 'What'],
    [],
  );
  const rows = table.querySelector('tbody');
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const empty = h('p', { class: 'empty', hidden: true }, 'Nothing was changed yet.');
  const more = h('button', { type: 'button', hidden: true }, 'Older entries');
  main.append(problem, empty, table, more);
  let next = null;

  async function load(cursor) {
    more.disabled = true;
    try {
      const page = await api('GET', withParams('/audit', { tenantId, cursor }));
      for (const e of page.entries) {
        rows.append(
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
        );
      }
      next = page.next;
      more.hidden = next === null;
      problem.hidden = true;
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
    } finally {
      more.disabled = false;
      empty.hidden = rows.children.length > 0;
      table.hidden = rows.children.length === 0;
    }
  }
  more.addEventListener('click', () => void load(next));
  await load(null);
}

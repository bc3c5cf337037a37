/**
 * A tenant's data lifecycle (`#/tenants/<id>/retention`): how long each kind of its data is kept
 * (changed here as through `PUT …/retention`), what it stores, what the retention job deleted at
 * its last runs and when, and erasure on request with its receipts. The API keeps no erased
 * address (only a salted hash), so a receipt shows counts, never whom it was for.
 */
import { api, path } from '../lib/api.js';
import { h, listTable, replace, when } from '../lib/dom.js';
import { clearErrors, generalError, input, showApiError, value } from '../lib/forms.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { href } from '../lib/router.js';

/** The policy's fields, in the API's order, with what an operator reads. */
const POLICY = [
  ['rawSourceDays', 'Raw sources (.eml)'],
  ['messageBodyDays', 'Message bodies'],
  ['messageDays', 'Whole messages'],
  ['outboundDays', 'Outgoing mail'],
  ['logDays', 'Webhook and send logs'],
];

/** What a retention run or erasure removed, as "kind: n" words; `none` when nothing. */
function countWords(counts, none) {
  const parts = Object.entries(counts ?? {})
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind.replace(/_/g, ' ')}: ${n}`);
  return parts.length > 0 ? parts.join(', ') : none;
}

function bytesWords(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** A datetime-local value as an ISO date-time for the API, or undefined when empty. */
function isoOf(local) {
  return local ? new Date(local).toISOString() : undefined;
}

function section(id, title, ...children) {
  return h(
    'section',
    { 'aria-labelledby': id },
    h('div', { class: 'section-head' }, h('h2', { id }, title)),
    ...children,
  );
}

function policyForm(tenantId, policy) {
  const general = generalError();
  const saved = h('p', { class: 'hint', role: 'status' });
  const form = h(
    'form',
    { id: 'retention-form', novalidate: true },
    h('p', { class: 'hint' }, 'Days each kind is kept after it arrived; empty keeps it forever.'),
    POLICY.map(([name, label]) => input({ label, name, type: 'number', min: 1, value: policy[name] ?? '' })),
    general,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save retention'), saved),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    saved.textContent = '';
    const body = {};
    for (const [name] of POLICY) {
      const text = value(form, name).trim();
      // Sent as typed: the API names the field when it is not a whole number of days.
      body[name] = text === '' ? null : Number(text);
    }
    try {
      const now = await api('PUT', `${path('tenants', tenantId)}/retention`, body);
      for (const [name] of POLICY) form.elements.namedItem(name).value = now[name] ?? '';
      saved.textContent = 'Saved.';
    } catch (err) {
      showApiError(form, general, err);
    }
  });
  return form;
}

function storageList(storage) {
  const byStore = Object.entries(storage.sourcesByStore).map(
    ([store, u]) => `${store}: ${u.count} (${bytesWords(u.bytes)})`,
  );
  return h(
    'dl',
    { class: 'facts', id: 'storage' },
    h('dt', {}, 'Messages'),
    h('dd', {}, `${storage.messages.count} (bodies ${bytesWords(storage.messages.bytes)})`),
    h('dt', {}, 'Sources'),
    h(
      'dd',
      {},
      `${storage.sources.count} (${bytesWords(storage.sources.bytes)})`,
      byStore.length ? ` — ${byStore.join(', ')}` : '',
    ),
  );
}

function runTable(runs) {
  if (runs.length === 0) return h('p', { class: 'empty' }, 'The retention job has not run for this tenant yet.');
  return listTable(
    'Retention runs',
    ['Finished', 'Took', 'Deleted'],
    runs.map((r) =>
      h(
        'tr',
        {},
        h('td', {}, when(r.finishedAt)),
        h('td', {}, `${Math.max(0, new Date(r.finishedAt) - new Date(r.startedAt))} ms`),
        h('td', {}, countWords(r.removed, 'nothing was due')),
      ),
    ),
  );
}

function receiptRow(e) {
  const range = e.since || e.until ? `${when(e.since)} – ${when(e.until)}` : 'all time';
  return h(
    'tr',
    { 'data-erasure': e.id },
    h('td', {}, when(e.createdAt)),
    h('td', {}, e.requestedBy?.name ?? '—'),
    h('td', {}, range),
    h('td', {}, e.finishedAt ? when(e.finishedAt) : 'not finished: repeat the request to carry it on'),
    h('td', {}, countWords(e.counts, 'nothing matched')),
    h('td', {}, h('code', {}, e.id)),
  );
}

/**
 * Erasure on request, confirmed in a second step (it cannot be undone); the receipt joins the
 * list at its top.
 */
function erasureForm(tenantId, receipts) {
  const general = generalError();
  const confirmNote = h('p', { class: 'warning', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'danger' }, 'Erase…');
  let confirming = false;
  const form = h(
    'form',
    { id: 'erasure-form', novalidate: true },
    input({ label: 'Address', name: 'address', type: 'email', required: true, autocomplete: 'off' }),
    input({ label: 'Since (optional)', name: 'since', type: 'datetime-local' }),
    input({ label: 'Until (optional)', name: 'until', type: 'datetime-local' }),
    general,
    confirmNote,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('input', () => {
    confirming = false;
    confirmNote.hidden = true;
    submit.textContent = 'Erase…';
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    const address = value(form, 'address').trim();
    if (!confirming) {
      confirming = true;
      confirmNote.textContent = `Every message from or to ${address || '(no address)'} in this range is deleted for good, with its source, deliveries and outgoing mail. This cannot be undone.`;
      confirmNote.hidden = false;
      submit.textContent = 'Erase for good';
      return;
    }
    submit.disabled = true;
    try {
      const receipt = await api('POST', `${path('tenants', tenantId)}/erasures`, {
        address,
        since: isoOf(value(form, 'since')),
        until: isoOf(value(form, 'until')),
      });
      receipts.prepend(receipt);
      form.reset();
    } catch (err) {
      showApiError(form, general, err);
    } finally {
      confirming = false;
      confirmNote.hidden = true;
      submit.textContent = 'Erase…';
      submit.disabled = false;
    }
  });
  return form;
}

/** The receipts table, kept as a list that a new receipt joins at its top. */
function receiptList(erasures) {
  const holder = h('div', { id: 'erasure-receipts' });
  const items = [...erasures];
  const draw = () =>
    replace(
      holder,
      items.length === 0
        ? h('p', { class: 'empty' }, 'No erasure was requested yet.')
        : listTable(
            'Erasure receipts',
            ['Requested', 'By', 'Range', 'Finished', 'Erased', 'Receipt'],
            items.map(receiptRow),
          ),
    );
  draw();
  return {
    element: holder,
    prepend(receipt) {
      const at = items.findIndex((e) => e.id === receipt.id);
      if (at >= 0) items.splice(at, 1);
      items.unshift(receipt);
      draw();
    },
  };
}

export async function renderRetention(main, { tenantId }) {
  const base = path('tenants', tenantId);
  let tenant, policy, storage, runs, erasures;
  try {
    [tenant, policy, storage, { runs }, { erasures }] = await Promise.all([
      api('GET', base),
      api('GET', `${base}/retention`),
      api('GET', `${base}/storage`),
      api('GET', `${base}/retention/runs`),
      api('GET', `${base}/erasures`),
    ]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Retention']]);
    failure(main, err);
    return;
  }
  breadcrumbs([['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], ['Retention and erasure']]);
  heading(main, `${tenant.name}: retention and erasure`);
  const receipts = receiptList(erasures);
  main.append(
    section('retention-title', 'Retention', policyForm(tenantId, policy)),
    section('storage-title', 'Stored now', storageList(storage)),
    section('runs-title', 'Last retention runs', runTable(runs)),
    section(
      'erasure-title',
      'Erasure on request',
      h(
        'p',
        { class: 'hint' },
        'Deletes every message from or to an address, wherever its source is kept; the receipt keeps counts, never the address.',
      ),
      erasureForm(tenantId, receipts),
      receipts.element,
    ),
  );
}

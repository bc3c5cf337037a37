/**
 * A destination's mail: inbound newest first with paging, new mail added as it arrives (the
 * destination's server-sent events, src/api/routes/events.ts), and outbound with its status
 * (read again every few seconds: no event stream offers it).
 */
import { api, path, withParams } from '../lib/api.js';
import { openEventStream } from '../lib/event-stream.js';
import { h, listTable, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { href, withQuery } from '../lib/router.js';
import { HIT_HEADINGS, hitRow } from './trace.js';

/** [50] inbound messages a page. */
const PAGE = 50;

/** [5000] ms between two readings of the outbound statuses while the page is shown (no event stream offers them). */
const OUTBOUND_REFRESH_MS = 5000;

function sender(m) {
  if (!m.from) return '—';
  return m.from.name ? `${m.from.name} <${m.from.address}>` : m.from.address;
}

function inboundRow(tenantId, m, fresh = false) {
  return h(
    'tr',
    { 'data-seq': String(m.seq), 'data-message': m.id, class: fresh ? 'fresh' : undefined },
    h('td', {}, when(m.receivedAt)),
    h('td', {}, sender(m)),
    h('td', {}, h('a', { href: href('tenants', tenantId, 'trace', 'inbound', m.id) }, m.subject || '(no subject)')),
    h('td', {}, m.claimedBy ?? '—'),
    h('td', {}, when(m.ackedAt)),
  );
}

/** Inbound: pages of the newest first, and the live stream of what arrives after the newest shown. */
function inboundSection(tenantId, base) {
  const table = listTable('Recent messages', ['Received', 'From', 'Subject', 'Claimed by', 'Acknowledged'], []);
  const rows = table.querySelector('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No messages have arrived at this destination yet.');
  const live = h('p', { class: 'hint live', role: 'status' });
  const arrived = h('p', { role: 'status', class: 'arrived', hidden: true });
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const more = h('button', { type: 'button', hidden: true }, 'Older messages');
  const section = h(
    'section',
    { 'aria-labelledby': 'inbound-title' },
    h('h2', { id: 'inbound-title' }, 'Inbound'),
    live,
    arrived,
    problem,
    empty,
    table,
    more,
  );
  let oldest = null;
  let newest = 0;
  let fresh = 0;

  async function page(before) {
    more.disabled = true;
    try {
      const answer = await api(
        'GET',
        withParams(`${base}/messages`, { order: 'desc', limit: PAGE, ...(before !== null && { before }) }),
      );
      for (const m of answer.messages) rows.append(inboundRow(tenantId, m));
      if (answer.messages.length > 0) {
        newest = Math.max(newest, answer.messages[0].seq);
        oldest = answer.next;
      }
      more.hidden = answer.messages.length < PAGE || oldest <= 1;
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
  more.addEventListener('click', () => void page(oldest));

  function start() {
    return openEventStream(withParams(`${base}/events`, { after: newest }), {
      onEvent: ({ type, data }) => {
        if (type === 'error') {
          problem.textContent = JSON.parse(data).message;
          problem.hidden = false;
          return;
        }
        if (type !== 'message.routed') return;
        const m = JSON.parse(data);
        if (m.seq <= newest || rows.querySelector(`tr[data-seq="${m.seq}"]`)) return;
        newest = m.seq;
        rows.prepend(inboundRow(tenantId, m, true));
        fresh += 1;
        arrived.textContent = `${fresh} new message${fresh === 1 ? '' : 's'} arrived while the page was open.`;
        arrived.hidden = false;
        empty.hidden = true;
        table.hidden = false;
      },
      onState: (state) => {
        live.dataset.state = state;
        live.textContent =
          state === 'open'
            ? 'Live: new mail shows here as it arrives.'
            : state === 'reconnecting'
              ? 'Reconnecting to the engine for new mail…'
              : 'New mail is not shown live (reload the page).';
      },
    });
  }
  return { section, page, start };
}

/** Outbound: the destination's outgoing mail from the trace, newest first, with its status. */
function outboundSection(tenantId, destinationId) {
  const table = listTable('Outgoing messages', HIT_HEADINGS, []);
  const rows = table.querySelector('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'Nothing was sent from this destination yet.');
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const more = h('button', { type: 'button', hidden: true }, 'Older outgoing messages');
  const refresh = h('button', { type: 'button', class: 'small', onclick: () => void load(null) }, 'Refresh');
  const section = h(
    'section',
    { 'aria-labelledby': 'outbound-title' },
    h('div', { class: 'section-head' }, h('h2', { id: 'outbound-title' }, 'Outbound'), refresh),
    problem,
    empty,
    table,
    more,
  );
  let next = null;
  async function load(cursor) {
    more.disabled = true;
    try {
      const answer = await api(
        'GET',
        withParams(path('tenants', tenantId, 'trace'), { destinationId, kind: 'outbound', cursor }),
      );
      if (cursor === null) rows.replaceChildren();
      for (const m of answer.messages) rows.append(hitRow(tenantId, m));
      next = answer.next;
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

  /** The newest page read again: statuses updated in place, messages sent meanwhile added on top. */
  async function refreshStatuses() {
    let answer;
    try {
      answer = await api('GET', withParams(path('tenants', tenantId, 'trace'), { destinationId, kind: 'outbound' }));
    } catch {
      return; // the next reading tries again; the Refresh button says what fails
    }
    const fresh = [];
    for (const m of answer.messages) {
      const row = rows.querySelector(`tr[data-hit="${m.id}"]`);
      if (!row) fresh.push(hitRow(tenantId, m));
      else if (row.querySelector('.status [data-status]')?.dataset.status !== m.status) {
        row.querySelector('.status').replaceChildren(hitRow(tenantId, m).querySelector('.status [data-status]'));
      }
    }
    rows.prepend(...fresh);
    empty.hidden = rows.children.length > 0;
    table.hidden = rows.children.length === 0;
  }
  return { section, load, refreshStatuses };
}

export async function renderDestinationMessages(main, { tenantId, destinationId }) {
  const base = path('tenants', tenantId, 'destinations', destinationId);
  let tenant, destination;
  try {
    [tenant, destination] = await Promise.all([api('GET', path('tenants', tenantId)), api('GET', base)]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Destination']]);
    failure(main, err);
    return;
  }
  breadcrumbs([['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], [destination.name]]);
  heading(
    main,
    `${destination.name}: recent messages`,
    h('a', { href: withQuery(href('tenants', tenantId, 'trace'), { destinationId }) }, 'Trace its mail'),
  );
  main.append(h('p', {}, `${destination.address}${destination.monitored ? '' : ' (not monitored)'}`));
  const inbound = inboundSection(tenantId, base);
  const outbound = outboundSection(tenantId, destinationId);
  main.append(inbound.section, outbound.section);
  await Promise.all([inbound.page(null), outbound.load(null)]);
  const stream = inbound.start();
  const timer = setInterval(() => void outbound.refreshStatuses(), OUTBOUND_REFRESH_MS);
  return () => {
    stream.close();
    clearInterval(timer);
  };
}

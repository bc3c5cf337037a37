/**
 * A destination's mail: inbound newest first with paging, new mail added as it arrives (the
 * destination's server-sent events, src/api/routes/events.ts), and outbound with its status
 * (read again every few seconds: no event stream offers it).
 */
import { api, path, withParams } from '../lib/api.js';
import { openEventStream } from '../lib/event-stream.js';
import { h, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { pagedTable } from '../lib/paged-table.js';
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
  let newest = 0;
  let fresh = 0;
  const list = pagedTable({
    label: 'Recent messages',
    headings: ['Received', 'From', 'Subject', 'Claimed by', 'Acknowledged'],
    more: 'Older messages',
    empty: 'No messages have arrived at this destination yet.',
    fetchPage: async (before) => {
      const answer = await api(
        'GET',
        withParams(`${base}/messages`, { order: 'desc', limit: PAGE, ...(before !== null && { before }) }),
      );
      if (answer.messages.length > 0) newest = Math.max(newest, answer.messages[0].seq);
      const last = answer.messages.length < PAGE || answer.next <= 1;
      return { items: answer.messages, next: last ? null : answer.next };
    },
    row: (m) => inboundRow(tenantId, m),
  });
  const { rows, problem } = list;
  const live = h('p', { class: 'hint live', role: 'status' });
  const arrived = h('p', { role: 'status', class: 'arrived', hidden: true });
  const section = h(
    'section',
    { 'aria-labelledby': 'inbound-title' },
    h('h2', { id: 'inbound-title' }, 'Inbound'),
    live,
    arrived,
    problem,
    list.empty,
    list.table,
    list.more,
  );

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
        list.settle();
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
  return { section, page: list.load, start };
}

/** Outbound: the destination's outgoing mail from the trace, newest first, with its status. */
function outboundSection(tenantId, destinationId) {
  const list = pagedTable({
    label: 'Outgoing messages',
    headings: HIT_HEADINGS,
    more: 'Older outgoing messages',
    empty: 'Nothing was sent from this destination yet.',
    fetchPage: async (cursor) => {
      const answer = await api(
        'GET',
        withParams(path('tenants', tenantId, 'trace'), { destinationId, kind: 'outbound', cursor }),
      );
      return { items: answer.messages, next: answer.next };
    },
    row: (m) => hitRow(tenantId, m),
  });
  const { rows, load } = list;
  const refresh = h('button', { type: 'button', class: 'small', onclick: () => void load(null) }, 'Refresh');
  const section = h(
    'section',
    { 'aria-labelledby': 'outbound-title' },
    h('div', { class: 'section-head' }, h('h2', { id: 'outbound-title' }, 'Outbound'), refresh),
    list.problem,
    list.empty,
    list.table,
    list.more,
  );

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
    list.settle();
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

/** A destination's recent inbound messages (newest first). */
import { api, path } from '../lib/api.js';
import { h, listTable, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { href } from '../lib/router.js';

/** How many messages the page shows. */
const SHOWN = 50;

/** The newest messages, newest first (one request, whatever the size of the mailbox). */
async function recent(base) {
  const { messages } = await api('GET', `${base}/messages?order=desc&limit=${SHOWN}`);
  return messages;
}

export async function renderDestinationMessages(main, { tenantId, destinationId }) {
  const base = path('tenants', tenantId, 'destinations', destinationId);
  let tenant, destination, messages;
  try {
    [tenant, destination] = await Promise.all([api('GET', path('tenants', tenantId)), api('GET', base)]);
    messages = await recent(base);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Destination']]);
    failure(main, err);
    return;
  }
  breadcrumbs([['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], [destination.name]]);
  heading(main, `${destination.name}: recent messages`);
  main.append(h('p', {}, `${destination.address}${destination.monitored ? '' : ' (not monitored)'}`));
  if (messages.length === 0) {
    main.append(h('p', { class: 'empty' }, 'No messages have arrived at this destination yet.'));
    return;
  }
  main.append(
    listTable(
      'Recent messages',
      ['Received', 'From', 'Subject', 'Claimed by', 'Acknowledged'],
      messages.map((m) =>
        h(
          'tr',
          {},
          h('td', {}, when(m.receivedAt)),
          h('td', {}, m.from ? (m.from.name ? `${m.from.name} <${m.from.address}>` : m.from.address) : '—'),
          h('td', {}, m.subject || '(no subject)'),
          h('td', {}, m.claimedBy ?? '—'),
          h('td', {}, when(m.ackedAt)),
        ),
      ),
    ),
  );
}

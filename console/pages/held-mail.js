/**
 * Held mail of an e-mail server: the unrouted and quarantined messages with the reason, and what
 * an operator does with them through the API (each action traced and audited by the engine):
 * route to a destination, release after a fix (routed again by the server's rules of now), delete.
 * Shown on the server's status page and, for one message, on its trace page.
 */
import { api, path } from '../lib/api.js';
import { h, listTable, replace, when } from '../lib/dom.js';
import { confirmDialog, openDialog } from '../lib/dialog.js';
import { clearErrors, generalError, select, showApiError } from '../lib/forms.js';
import { href } from '../lib/router.js';
import { statusBadge } from '../lib/words.js';

/** [100] held messages of each kind listed (the newest). */
const LISTED = 100;

/** Why a message waits, in words, when the engine recorded no reason of its own. */
const UNROUTED_WORDS =
  'No destination has one of its recipient addresses, and the e-mail server has no default destination.';

export function heldReason(m) {
  return m.quarantineReason ?? (m.status === 'unrouted' ? UNROUTED_WORDS : '—');
}

/** "Route to…": a destination of the tenant, chosen in a dialog. */
function routeDialog({ base, message, destinations, onDone }) {
  const general = generalError();
  const form = h(
    'form',
    { novalidate: true },
    h('p', {}, `Deliver '${message.subject || '(no subject)'}' to:`),
    select({
      label: 'Destination',
      name: 'destinationId',
      options: [['', 'Choose a destination'], ...destinations.map((d) => [d.id, `${d.name} (${d.address})`])],
    }),
    general,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Route'),
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
    ),
  );
  const dlg = openDialog({ title: 'Route message', body: form });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    const destinationId = form.elements.namedItem('destinationId').value;
    if (!destinationId) {
      return showApiError(form, general, { field: 'destinationId', message: 'Choose the destination.' });
    }
    try {
      const outcome = await api('POST', `${base}/route`, { destinationId });
      dlg.close();
      onDone(outcome, 'routed');
    } catch (err) {
      showApiError(form, general, err);
    }
  });
}

/**
 * The action buttons of a held message. `onDone(outcome, verb)` after an action; `onError(err)`
 * when one is refused (a release that would still be held says why).
 */
export function heldActions({ tenantId, serverId, message, destinations, onDone, onError }) {
  const base = path('tenants', tenantId, 'servers', serverId, 'messages', message.id);
  const label = `message ${message.subject || message.id}`;
  return h(
    'span',
    { class: 'row-actions' },
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        'aria-label': `Route ${label}`,
        onclick: () => routeDialog({ base, message, destinations, onDone }),
      },
      'Route to…',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        'aria-label': `Release ${label}`,
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            onDone(await api('POST', `${base}/release`, {}), 'released');
          } catch (err) {
            onError(err);
          } finally {
            button.disabled = false;
          }
        },
      },
      'Release',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'small danger',
        'aria-label': `Delete ${label}`,
        onclick: () =>
          confirmDialog({
            title: 'Delete message',
            question: `Delete '${message.subject || '(no subject)'}' for good? Its source is deleted too.`,
            action: async () => onDone(await api('DELETE', base), 'deleted'),
          }),
      },
      'Delete',
    ),
  );
}

/** What an action did, in words. */
export function outcomeWords(outcome, verb, destinations) {
  if (verb === 'deleted') return 'The message was deleted.';
  const names = outcome.destinationIds.map((id) => destinations.find((d) => d.id === id)?.name ?? id);
  return names.length > 0
    ? `The message was ${verb} to ${names.join(', ')}.`
    : `The message was ${verb}; it is ${outcome.status}.`;
}

/**
 * The section of a server's page: unrouted and quarantined mail, each with its actions.
 * Answers the section and a `refresh()` that reads both lists again.
 */
export function heldMailSection({ tenantId, serverId, destinations }) {
  const section = h('section', { 'aria-labelledby': 'held-title' });
  const notice = h('p', { role: 'status', hidden: true });
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const list = (status) =>
    api('GET', `${path('tenants', tenantId, 'servers', serverId, 'messages')}?status=${status}&limit=${LISTED}`);

  async function refresh() {
    let held;
    try {
      const [unrouted, quarantined] = await Promise.all([list('unrouted'), list('quarantined')]);
      held = [...unrouted.messages, ...quarantined.messages].sort((a, b) => b.receivedAt.localeCompare(a.receivedAt));
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
      return;
    }
    const done = (outcome, verb) => {
      problem.hidden = true;
      notice.textContent = outcomeWords(outcome, verb, destinations);
      notice.hidden = false;
      void refresh().then(() => document.getElementById('held-title')?.focus());
    };
    const failed = (err) => {
      problem.textContent = err.message;
      problem.hidden = false;
    };
    const rows = held.map((m) =>
      h(
        'tr',
        { 'data-held': m.id },
        h('td', {}, when(m.receivedAt)),
        h('td', {}, statusBadge(m.status)),
        h('td', {}, m.from ? m.from.address : '—'),
        h('td', {}, h('a', { href: href('tenants', tenantId, 'trace', 'inbound', m.id) }, m.subject || '(no subject)')),
        h('td', { class: 'reason' }, heldReason(m)),
        h('td', {}, heldActions({ tenantId, serverId, message: m, destinations, onDone: done, onError: failed })),
      ),
    );
    replace(
      section,
      h('h2', { id: 'held-title', tabindex: '-1' }, `Unrouted and quarantined mail (${held.length})`),
      notice,
      problem,
      held.length === 0
        ? h('p', { class: 'empty' }, 'Nothing is held: every message of this server was routed.')
        : listTable('Unrouted and quarantined mail', ['Received', 'Status', 'From', 'Subject', 'Why', ''], rows),
    );
  }
  return { section, refresh };
}

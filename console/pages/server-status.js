/**
 * A server's status: IMAP connection state and last error in plain words, OAuth 2.0 sign-in,
 * outbound queue (spool depth), heartbeat round trip, unrouted and quarantined mail with route /
 * release / delete (pages/held-mail.js), dead letters with re-queue / delete, and
 * the requests waiting for other engine instances (withdrawn when their instance is not coming back).
 */
import { api, path } from '../lib/api.js';
import { h, listTable, replace, when } from '../lib/dom.js';
import { confirmDialog } from '../lib/dialog.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { href, withQuery } from '../lib/router.js';
import { CONNECTION, HEALTH, QUEUE, tone } from '../lib/words.js';
import { heldMailSection } from './held-mail.js';

/** [5000] how often connection and queue refresh while the page is open, in milliseconds. */
const REFRESH_MS = 5000;

/** A request's action in words. */
const ACTIONS = { cancel: 'Cancel', requeue: 'Re-queue', delete: 'Delete' };

function facts(rows) {
  return h(
    'dl',
    { class: 'facts' },
    rows.filter(Boolean).map(([term, detail]) => [h('dt', {}, term), h('dd', {}, detail ?? '—')]),
  );
}

function badge(state, words) {
  return h('span', { class: tone(state) }, words[state] ?? state);
}

function signIn(state) {
  const words = state.error ?? (state.account ? `as ${state.account}` : '');
  return h('span', {}, badge(state.status, {}), words ? ` ${words}` : '');
}

/** How new mail is learned, in words: pushed (IDLE) with a safety check, or polled. */
function newMailWords({ by, pollIntervalMs }) {
  const every =
    pollIntervalMs >= 60_000 ? `${Math.round(pollIntervalMs / 60_000)} min` : `${Math.round(pollIntervalMs / 1000)} s`;
  return by === 'idle'
    ? `announced by the server (IDLE), and checked every ${every} besides`
    : `checked every ${every} (the server has no IDLE)`;
}

/** What each `tls` mode means, as the server form names it. */
const TLS_WORDS = {
  implicit: 'SSL/TLS from the start',
  'starttls-required': 'STARTTLS, required',
  'starttls-when-offered': 'STARTTLS when offered, else unencrypted',
  none: 'None: unencrypted',
};

export async function renderServerStatus(main, { tenantId, serverId }) {
  const base = path('tenants', tenantId, 'servers', serverId);
  let tenant, server, destinations;
  try {
    [tenant, server, { destinations }] = await Promise.all([
      api('GET', path('tenants', tenantId)),
      api('GET', base),
      api('GET', path('tenants', tenantId, 'destinations')),
    ]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['E-mail server']]);
    failure(main, err);
    return;
  }
  breadcrumbs([['Tenants', '#/'], [tenant.name, href('tenants', tenantId)], [server.name]]);
  const refreshButton = h('button', { type: 'button', onclick: () => void refresh() }, 'Refresh');
  const testButton = h('button', { type: 'button', onclick: () => void testConnection() }, 'Test connection');
  const traceLink = h('a', { href: withQuery(href('tenants', tenantId, 'trace'), { serverId }) }, 'Trace its mail');
  heading(main, `${server.name}: status`, h('span', { class: 'page-links' }, traceLink, testButton, refreshButton));

  const connection = h('section', { 'aria-labelledby': 'connection-title' });
  const outbound = h('section', { 'aria-labelledby': 'outbound-title' });
  const dead = h('section', { 'aria-labelledby': 'dead-title' });
  const requests = h('section', { 'aria-labelledby': 'requests-title', hidden: true });
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const notice = h('p', { role: 'status', hidden: true });
  const tested = h('section', { 'aria-labelledby': 'test-title', class: 'connection-test', hidden: true });
  const held = heldMailSection({ tenantId, serverId, destinations });
  main.append(
    problem,
    notice,
    tested,
    h('div', { class: 'cards' }, connection, outbound),
    held.section,
    dead,
    requests,
  );

  /** After a re-queue or delete: another instance holds the file and does it within seconds (202). */
  function noticeRequested(result, what) {
    if (result?.state !== 'requested') return;
    const when = result.holderRunning ? 'within seconds' : 'when it runs again (it is not running now)';
    notice.textContent = `Instance ${result.instanceId} holds this message and will ${what} it ${when}.`;
    notice.hidden = false;
  }

  const testTitle = () => h('h2', { id: 'test-title' }, 'Connection test');

  /** "Test connection": logs in on both sides as the stored settings say (nothing is read or sent). */
  async function testConnection() {
    testButton.disabled = true;
    replace(tested, testTitle(), h('p', {}, 'Testing…'));
    tested.hidden = false;
    try {
      const result = await api('POST', `${base}/test`, {});
      const line = (name, side) =>
        h(
          'li',
          {},
          h('strong', {}, `${name}: `),
          badge(side.ok ? 'ok' : 'down', { ok: 'OK', down: 'failed' }),
          ` ${side.detail} (${side.ms} ms)`,
        );
      replace(tested, testTitle(), h('ul', {}, line('IMAP', result.imap), line('SMTP', result.smtp)));
    } catch (err) {
      replace(tested, testTitle(), h('p', { class: 'error' }, err.message));
    } finally {
      testButton.disabled = false;
    }
  }

  /** Reloads the status; the lists (which hold buttons) only when asked, not on the timer. */
  async function refresh({ withDeadLetters = true } = {}) {
    try {
      const oauthWanted = server.imap.auth.method === 'oauth2' || server.smtp.auth.method === 'oauth2';
      const [status, oauth, dead, waiting] = await Promise.all([
        api('GET', `${base}/status`),
        oauthWanted ? api('GET', `${base}/oauth`) : null,
        withDeadLetters ? api('GET', `${base}/dead-letters`) : null,
        withDeadLetters ? api('GET', `${path('tenants', tenantId, 'outbound-requests')}?serverId=${serverId}`) : null,
      ]);
      problem.hidden = true;
      showConnection(status.inbound, oauth, status.watchedBy, status);
      showOutbound(status.outbound, status);
      if (dead) showDeadLetters(dead.deadLetters);
      if (waiting) showRequests(waiting.requests);
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
    }
  }

  /** A side's encryption in words, with the warning of one that sends unencrypted. */
  function encryption(side, { tls, warnings }) {
    const warning = warnings.find((w) => w.startsWith(`'${side}.tls'`));
    return warning ? h('span', { class: 'warning' }, `${TLS_WORDS[tls] ?? tls}: ${warning}`) : (TLS_WORDS[tls] ?? tls);
  }

  function showConnection(inbound, oauth, watchedBy, status) {
    // With several engine instances, the mailbox is watched by the one holding its lease.
    const elsewhere = watchedBy && !watchedBy.thisInstance;
    replace(
      connection,
      h('h2', { id: 'connection-title' }, 'Mailbox (IMAP)'),
      facts([
        ['Account', `${server.imap.user} at ${server.imap.host}:${server.imap.port}`],
        ['Encryption', encryption('imap', { tls: status.tls.imap, warnings: status.warnings })],
        watchedBy && [
          'Watched by',
          elsewhere
            ? `instance ${watchedBy.instanceId} (the state below is this instance's)`
            : `this instance (${watchedBy.instanceId})`,
        ],
        ['Connection', badge(inbound.state, CONNECTION)],
        ['Last error', inbound.lastError ? h('span', { class: 'last-error' }, inbound.lastError) : 'none'],
        inbound.lastErrorAt && ['Last error at', when(inbound.lastErrorAt)],
        inbound.lastProblemEndedAt && ['Last problem ended', when(inbound.lastProblemEndedAt)],
        inbound.newMail?.by && ['New mail', newMailWords(inbound.newMail)],
        ...Object.entries(inbound.notWatched ?? {}).map(([folder, why]) => [
          `Folder ${folder}`,
          h('span', { class: 'warning', 'data-not-watched': folder }, `not read: ${why}`),
        ]),
        ['Last contact', when(inbound.lastContactAt)],
        ['Reconnects', String(inbound.reconnects)],
        inbound.nextAttemptAt && ['Next attempt', when(inbound.nextAttemptAt)],
        oauth?.imap && ['IMAP sign-in', signIn(oauth.imap)],
        oauth?.smtp && ['SMTP sign-in', signIn(oauth.smtp)],
      ]),
    );
  }

  function showOutbound({ queue, heartbeat }, status) {
    replace(
      outbound,
      h('h2', { id: 'outbound-title' }, 'Sending (SMTP)'),
      facts([
        ['Encryption', encryption('smtp', { tls: status.tls.smtp, warnings: status.warnings })],
        ['Queue', queue ? badge(queue.state, QUEUE) : 'Not started'],
        ['Spool depth', h('span', { class: 'spool-depth' }, String(queue?.depth ?? 0))],
        queue?.oldestQueuedAt && ['Oldest queued', when(queue.oldestQueuedAt)],
        queue?.lastReply && ['Last SMTP reply', queue.lastReply],
        queue?.lastErrorAt && ['Failing since', when(queue.lastErrorAt)],
        queue?.resumeAt && ['Resumes at', when(queue.resumeAt)],
        queue?.lastProblemEndedAt && ['Last problem ended', when(queue.lastProblemEndedAt)],
        queue?.rateLimitedUntil && ['Rate limited until', when(queue.rateLimitedUntil)],
        [
          'Heartbeat',
          heartbeat
            ? badge(heartbeat.health, HEALTH)
            : server.smtp.heartbeatAddress
              ? 'Not checked yet'
              : 'No heartbeat address',
        ],
        heartbeat && ['Last heartbeat', when(heartbeat.lastHeartbeatAt)],
        heartbeat?.lastResult && ['Last result', heartbeat.lastResult],
        heartbeat && ['Round trip', heartbeat.roundTripMs === null ? '—' : `${heartbeat.roundTripMs} ms`],
      ]),
    );
  }

  /** Recipients refused for good before (the others got the message): a partly sent message says so. */
  function refusedNote(refused) {
    if (!refused || refused.length === 0) return '';
    return ` (partly sent; refused for good: ${refused.map((r) => `${r.address}: ${r.reply}`).join(', ')})`;
  }

  function showDeadLetters(deadLetters) {
    const rows = deadLetters.map((d) =>
      h(
        'tr',
        { 'data-dead-letter': d.id },
        h('td', {}, when(d.failedAt)),
        h('td', {}, d.subject || '—'),
        h('td', {}, `${d.reply ?? '—'}${refusedNote(d.refusedRecipients)}`),
        h('td', {}, String(d.attempts)),
        h(
          'td',
          { class: 'row-actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              'aria-label': `Re-queue dead letter ${d.id}`,
              onclick: async (event) => {
                event.currentTarget.disabled = true;
                try {
                  noticeRequested(await api('POST', `${base}/dead-letters${path(d.id)}/requeue`, {}), 're-queue');
                } catch (err) {
                  problem.textContent = err.message;
                  problem.hidden = false;
                }
                await refresh();
                document.getElementById('dead-title')?.focus(); // the row and its button are gone
              },
            },
            'Re-queue',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'small danger',
              'aria-label': `Delete dead letter ${d.id}`,
              onclick: () =>
                confirmDialog({
                  title: 'Delete dead letter',
                  question: 'Delete this message for good? It will not be sent.',
                  action: async () =>
                    noticeRequested(await api('DELETE', `${base}/dead-letters${path(d.id)}`), 'delete'),
                  onDone: () => void refresh().then(() => document.getElementById('dead-title')?.focus()),
                }),
            },
            'Delete',
          ),
        ),
      ),
    );
    replace(
      dead,
      h('h2', { id: 'dead-title', tabindex: '-1' }, `Dead letters (${deadLetters.length})`),
      deadLetters.length === 0
        ? h('p', { class: 'empty' }, 'No dead letters: nothing was refused for good.')
        : listTable('Dead letters', ['Failed at', 'Subject', 'SMTP reply', 'Attempts', ''], rows),
    );
  }

  /** Requests left for the instance holding a message's file; one whose instance is gone can be withdrawn. */
  function showRequests(list) {
    requests.hidden = list.length === 0;
    const rows = list.map((r) =>
      h(
        'tr',
        { 'data-request': r.requestId },
        h('td', {}, when(r.requestedAt)),
        h('td', {}, ACTIONS[r.action] ?? r.action),
        h('td', {}, r.subject || r.id),
        h('td', {}, `${r.instanceId}${r.holderRunning ? '' : ' (not running)'}`),
        h(
          'td',
          { class: 'row-actions' },
          (r.state === 'requested' || (r.state === 'in-progress' && !r.holderRunning)) &&
            h(
              'button',
              {
                type: 'button',
                class: 'small',
                'aria-label': `Withdraw request ${r.requestId}`,
                onclick: () =>
                  confirmDialog({
                    title: 'Withdraw request',
                    question: `Withdraw this request? Instance ${r.instanceId} will not carry it out.`,
                    action: () => api('DELETE', path('tenants', tenantId, 'outbound-requests', r.requestId)),
                    onDone: () => void refresh().then(() => document.getElementById('requests-title')?.focus()),
                  }),
              },
              'Withdraw',
            ),
        ),
      ),
    );
    replace(
      requests,
      h('h2', { id: 'requests-title', tabindex: '-1' }, `Waiting for other instances (${list.length})`),
      listTable('Requests waiting for other instances', ['Requested at', 'Action', 'Message', 'Instance', ''], rows),
    );
  }

  await Promise.all([refresh(), held.refresh()]);
  const timer = setInterval(() => {
    if (!document.querySelector('dialog[open]')) void refresh({ withDeadLetters: false });
  }, REFRESH_MS);
  return () => clearInterval(timer);
}

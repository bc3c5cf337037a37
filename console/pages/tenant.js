/** One tenant: its e-mail servers (state and health) and its destinations, with their dialogs. */
import { api, path } from '../lib/api.js';
import { h, listTable } from '../lib/dom.js';
import { confirmDialog } from '../lib/dialog.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { href } from '../lib/router.js';
import { CONNECTION, HEALTH, smtpAuthWords, tone } from '../lib/words.js';
import { openDestinationDialog } from '../dialogs/destination-dialog.js';
import { openServerDialog } from '../dialogs/server-dialog.js';

const MAX_SERVERS = 5;
/** [5000] ms between two readings of the servers' connection states while the page is shown. */
const REFRESH_MS = 5000;

export async function renderTenant(main, { tenantId }) {
  const base = path('tenants', tenantId);
  let tenant, servers, destinations, proxies;
  try {
    [tenant, { servers }, { destinations }, proxies] = await Promise.all([
      api('GET', base),
      api('GET', `${base}/servers`),
      api('GET', `${base}/destinations`),
      api('GET', path('proxies')),
    ]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Tenant']]);
    failure(main, err);
    return;
  }
  const reload = () => {
    main.replaceChildren();
    void renderTenant(main, { tenantId });
  };
  breadcrumbs([['Tenants', '#/'], [tenant.name]]);
  heading(
    main,
    tenant.name,
    h(
      'nav',
      { class: 'page-links', 'aria-label': 'Tenant pages' },
      h('a', { href: href('tenants', tenantId, 'trace') }, 'Message trace'),
      h('a', { href: href('tenants', tenantId, 'audit') }, 'Audit log'),
      h('a', { href: href('tenants', tenantId, 'retention') }, 'Retention and erasure'),
    ),
  );

  const usesOAuth = (s) => s.imap.auth.method === 'oauth2' || s.smtp.auth.method === 'oauth2';
  const [statuses, signIns] = await Promise.all([
    Promise.all(servers.map((s) => api('GET', `${base}/servers${path(s.id)}/status`).catch(() => null))),
    Promise.all(
      servers.map((s) => (usesOAuth(s) ? api('GET', `${base}/servers${path(s.id)}/oauth`).catch(() => null) : null)),
    ),
  ]);
  const serverName = new Map(servers.map((s) => [s.id, s.name]));

  main.append(
    h(
      'section',
      { 'aria-labelledby': 'servers-title' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', { id: 'servers-title' }, `E-mail servers (${servers.length} of ${MAX_SERVERS})`),
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            id: 'add-server',
            onclick: () => openServerDialog({ tenantId, mode: 'add', proxies, onChanged: reload }),
          },
          'Add e-mail server',
        ),
      ),
      servers.length === 0
        ? h('p', { class: 'empty' }, 'No e-mail servers yet.')
        : serverTable(tenantId, servers, destinations, proxies, statuses, signIns, reload),
    ),
    h(
      'section',
      { 'aria-labelledby': 'destinations-title' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', { id: 'destinations-title' }, 'Destinations'),
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            id: 'add-destination',
            onclick: () => openDestinationDialog({ tenantId, mode: 'add', servers, onChanged: reload }),
          },
          'Add destination',
        ),
      ),
      destinations.length === 0
        ? h('p', { class: 'empty' }, 'No destinations yet.')
        : destinationTable(tenantId, destinations, servers, serverName, reload),
    ),
  );
  refreshConnections(main, base, servers);
}

/**
 * Reads the servers' connection states again every REFRESH_MS while this page is shown, and
 * updates their badges in place: a watcher that connects, or fails, shows without a reload.
 */
function refreshConnections(main, base, servers) {
  const badges = [...main.querySelectorAll('[data-connection]')];
  if (badges.length === 0) return;
  const timer = setInterval(async () => {
    if (!badges.every((b) => b.isConnected)) {
      clearInterval(timer); // the page was left or rebuilt
      return;
    }
    for (const s of servers) {
      const badge = badges.find((b) => b.dataset.connection === s.id);
      const st = await api('GET', `${base}/servers${path(s.id)}/status`).catch(() => null);
      if (!badge || !st) continue;
      const state = st.inbound.state;
      badge.className = tone(state);
      badge.title = st.inbound.lastError ?? '';
      badge.textContent = CONNECTION[state] ?? state;
    }
  }, REFRESH_MS);
}

function actions(label, handlers) {
  return h(
    'td',
    { class: 'row-actions' },
    handlers.map(([text, fn, cls]) =>
      h('button', { type: 'button', class: cls ?? 'small', 'aria-label': `${text} ${label}`, onclick: fn }, text),
    ),
  );
}

/** The OAuth 2.0 sign-in of a server's sides, e.g. "IMAP sign-in: COMPLETE". */
function signInBadges(oauth) {
  if (!oauth) return null;
  return ['imap', 'smtp']
    .filter((side) => oauth[side] && !(side === 'smtp' && oauth.smtp.sharesImapSignIn))
    .map((side) =>
      h(
        'div',
        { class: 'sub' },
        `${side.toUpperCase()} sign-in: `,
        h('span', { class: tone(oauth[side].status) }, oauth[side].status),
        signedInFor(oauth[side]),
      ),
    );
}

/** " (alice@… for support@…)": who signed in, when it is not the mailbox itself (a delegate, an app). */
function signedInFor(side) {
  if (!side.account || !side.mailbox || side.account.toLowerCase() === side.mailbox.toLowerCase()) return '';
  return ` (${side.account} for ${side.mailbox})`;
}

function serverTable(tenantId, servers, destinations, proxies, statuses, signIns, reload) {
  const base = path('tenants', tenantId, 'servers');
  return listTable(
    'E-mail servers',
    ['Name', 'IMAP account', 'SMTP', 'Connection', 'Heartbeat', 'Queue', ''],
    servers.map((s, i) => {
      const st = statuses[i];
      const state = st?.inbound.state ?? 'unknown';
      const heartbeat = st?.outbound.heartbeat;
      const queue = st?.outbound.queue;
      const label = `e-mail server ${s.name}`;
      return h(
        'tr',
        { 'data-server': s.name },
        h(
          'td',
          {},
          h('a', { href: href('tenants', tenantId, 'servers', s.id) }, s.name),
          s.enabled ? '' : ' (disabled)',
        ),
        h(
          'td',
          {},
          `${s.imap.user} at ${s.imap.host}:${s.imap.port}`,
          s.imap.auth.method === 'oauth2' ? ' (OAuth 2.0)' : '',
        ),
        h('td', {}, `${s.smtp.host}:${s.smtp.port}, ${smtpAuthWords(s.smtp.auth)}`),
        h(
          'td',
          {},
          h(
            'span',
            { class: tone(state), title: st?.inbound.lastError ?? '', 'data-connection': s.id },
            CONNECTION[state] ?? state,
          ),
          signInBadges(signIns[i]),
        ),
        h(
          'td',
          {},
          heartbeat
            ? h('span', { class: tone(heartbeat.health) }, HEALTH[heartbeat.health] ?? heartbeat.health)
            : s.smtp.heartbeatAddress
              ? 'Not checked yet'
              : 'No heartbeat address',
        ),
        h('td', {}, queue ? `${queue.depth} queued` : '0 queued'),
        actions(label, [
          [
            'Edit',
            () => openServerDialog({ tenantId, mode: 'edit', server: s, destinations, proxies, onChanged: reload }),
          ],
          ['Copy', () => openServerDialog({ tenantId, mode: 'copy', server: s, proxies, onChanged: reload })],
          [
            'Delete',
            () =>
              confirmDialog({
                title: 'Delete e-mail server',
                question: `Delete the e-mail server '${s.name}'?`,
                action: () => deleteServer(`${base}${path(s.id)}`, s.name, reload),
                onDone: reload,
              }),
            'small danger',
          ],
        ]),
      );
    }),
  );
}

/**
 * Deletes a server; when outgoing mail still waits for it, asks once more whether to give that
 * mail up (each message is then marked failed and kept as a dead letter) and delete anyway.
 */
async function deleteServer(url, name, reload) {
  try {
    await api('DELETE', url);
  } catch (err) {
    if (err.code !== 'SERVER_HAS_QUEUED_MAIL') throw err;
    const waiting = err.details?.waiting ?? 0;
    confirmDialog({
      title: 'Give up waiting mail',
      question:
        `${waiting} outgoing message${waiting === 1 ? '' : 's'} still wait${waiting === 1 ? 's' : ''} to be sent ` +
        `through '${name}'. Give ${waiting === 1 ? 'it' : 'them'} up (each is marked failed and never sent) ` +
        'and delete the server?',
      yes: 'Give up mail and delete',
      action: () => api('DELETE', `${url}?discardQueued=true`),
      onDone: reload,
    });
  }
}

function destinationTable(tenantId, destinations, servers, serverName, reload) {
  const base = path('tenants', tenantId, 'destinations');
  const yes = (b) => (b ? 'Yes' : 'No');
  return listTable(
    'Destinations',
    ['Name', 'E-mail address', 'From text', 'Monitored', 'Outgoing', 'E-mail server', ''],
    destinations.map((d) => {
      const label = `destination ${d.name}`;
      return h(
        'tr',
        { 'data-destination': d.name },
        h('td', {}, h('a', { href: href('tenants', tenantId, 'destinations', d.id) }, d.name)),
        h('td', {}, d.address),
        h('td', {}, d.fromText),
        h('td', {}, yes(d.monitored)),
        h('td', {}, yes(d.outgoing)),
        h('td', {}, d.serverId ? (serverName.get(d.serverId) ?? d.serverId) : '(none)'),
        actions(label, [
          ['Edit', () => openDestinationDialog({ tenantId, mode: 'edit', destination: d, servers, onChanged: reload })],
          ['Copy', () => openDestinationDialog({ tenantId, mode: 'copy', destination: d, servers, onChanged: reload })],
          [
            'Delete',
            () =>
              confirmDialog({
                title: 'Delete destination',
                question: `Delete the destination '${d.name}'?`,
                action: () => api('DELETE', `${base}${path(d.id)}`),
                onDone: reload,
              }),
            'small danger',
          ],
        ]),
      );
    }),
  );
}

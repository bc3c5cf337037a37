/**
 * One message of the trace: its timeline (what the engine did with it, oldest first), and for an
 * inbound message its headers, text, HTML (shown inertly, see lib/mail-frame.js and
 * lib/mail-html.js), attachments to download, and for a held one the actions on it.
 */
import { api, apiBlob, path } from '../lib/api.js';
import { h, listTable, replace, when } from '../lib/dom.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { bareContentId, mailDocument } from '../lib/mail-html.js';
import { mailFrame } from '../lib/mail-frame.js';
import { href } from '../lib/router.js';
import { statusBadge } from '../lib/words.js';
import { heldActions, heldReason, outcomeWords } from './held-mail.js';

/** [5242880] bytes: a `cid:` image larger than this is not inlined (a download link stays). */
const MAX_INLINE_IMAGE = 5 * 1024 * 1024;

/** Timeline event types in words (any other is shown as the engine names it). */
const EVENTS = {
  fetched: 'Fetched',
  classified: 'Classified',
  routed: 'Routed',
  unrouted: 'Left unrouted',
  quarantined: 'Quarantined',
  released: 'Released',
  deleted: 'Deleted',
  duplicate: 'Duplicate',
  'webhook-failed': 'Webhook attempt failed',
  'webhook-delivered': 'Delivered by webhook',
  claimed: 'Claimed',
  acknowledged: 'Acknowledged',
  'reply-accepted': 'Reply accepted',
  accepted: 'Accepted',
  rendered: 'Rendered',
  'smtp-attempt': 'SMTP attempt',
  'rate-limited': 'Waiting for the rate limit',
  sent: 'Sent',
  'dead-lettered': 'Dead-lettered',
  requeued: 'Re-queued',
  'dead-letter-deleted': 'Dead letter deleted',
  cancelled: 'Cancelled',
  failed: 'Failed',
};

function detailText(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** An event's detail as a short definition list (values from the engine, as text). */
function details(detail) {
  if (!detail || Object.keys(detail).length === 0) return '';
  return h(
    'dl',
    { class: 'event-detail' },
    Object.entries(detail).map(([k, v]) => [h('dt', {}, k), h('dd', {}, detailText(v))]),
  );
}

/**
 * A sentence for the events an operator reads most (where it came from, where it went and why),
 * naming servers and destinations; the detail list below it keeps every field.
 */
function summary(e, names) {
  const d = e.detail ?? {};
  if (e.type === 'fetched') {
    return `From ${names.servers.get(d.serverId) ?? 'the e-mail server'}, mailbox ${d.mailbox}, UID ${d.uid}.`;
  }
  if (e.type === 'routed' && Array.isArray(d.destinations)) {
    const each = d.destinations.map((x) => {
      const name = names.destinations.get(x.id) ?? x.id;
      if (x.operator) return `${name} (chosen by ${d.by ?? 'an operator'})`;
      if (x.default) return `${name} (the server's default destination)`;
      return `${name} (${x.address} in ${x.header ?? 'a recipient header'})`;
    });
    return `To ${each.join(', ')}.`;
  }
  return null;
}

function timelineTable(tenantId, events, names = { servers: new Map(), destinations: new Map() }) {
  return listTable(
    'Timeline',
    ['When', 'Event', 'Detail'],
    events.map((e) =>
      h(
        'tr',
        { 'data-event': e.type },
        h('td', {}, when(e.at)),
        h(
          'td',
          {},
          EVENTS[e.type] ?? e.type,
          e.of
            ? h(
                'div',
                { class: 'sub' },
                h('a', { href: href('tenants', tenantId, 'trace', e.of.kind, e.of.id) }, 'of the reply'),
              )
            : '',
        ),
        h('td', {}, summary(e, names) ? h('p', { class: 'event-summary' }, summary(e, names)) : '', details(e.detail)),
      ),
    ),
  );
}

function address(a) {
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

/** [term, detail] pairs (falsy ones left out) as the page's list of facts. */
function factList(rows) {
  return h(
    'dl',
    { class: 'facts headers' },
    rows.filter(Boolean).map(([term, detail]) => [h('dt', {}, term), h('dd', {}, detail)]),
  );
}

function headerFacts(m) {
  const rows = [
    ['From', m.from ? address(m.from) : '—'],
    ['To', m.to.map(address).join(', ') || '—'],
    m.cc.length > 0 && ['Cc', m.cc.map(address).join(', ')],
    ['Subject', m.subject || '(no subject)'],
    ['Date', when(m.sentAt)],
    ['Received', when(m.receivedAt)],
    ['Message-ID', m.messageId ?? '—'],
    m.inReplyTo && ['In-Reply-To', m.inReplyTo],
    m.references.length > 0 && ['References', m.references.join(' ')],
    ['Size', `${m.size} bytes`],
    ['Status', statusBadge(m.status)],
    (m.status === 'quarantined' || m.status === 'unrouted') && ['Why', heldReason(m)],
    m.classification.reasons.length > 0 && ['Classified because', m.classification.reasons.join('; ')],
  ];
  return factList(rows);
}

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** The message's `cid:` images as data: URLs, by bare Content-ID (those that cannot be read are left out). */
async function cidImages(partBase, attachments) {
  const images = new Map();
  const wanted = attachments.filter(
    (a) => a.contentId && /^image\//i.test(a.contentType) && a.size <= MAX_INLINE_IMAGE,
  );
  await Promise.all(
    wanted.map(async (a) => {
      try {
        const blob = await apiBlob(`${partBase}/attachments/${a.index}`);
        images.set(bareContentId(a.contentId), await readAsDataUrl(blob));
      } catch {
        // shown as its alt text; the part is still listed for download
      }
    }),
  );
  return images;
}

/** Saves an attachment: read with the token, handed to the browser as a download. */
async function download(partBase, a, problem) {
  try {
    const blob = await apiBlob(`${partBase}/attachments/${a.index}`);
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: a.filename ?? `attachment-${a.index}`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    problem.textContent = err.message;
    problem.hidden = false;
  }
}

function attachmentList(partBase, attachments, problem) {
  return listTable(
    'Attachments',
    ['Name', 'Type', 'Size', ''],
    attachments.map((a) =>
      h(
        'tr',
        { 'data-attachment': String(a.index) },
        h('td', {}, a.filename ?? `attachment ${a.index}`, a.inline ? ' (inline)' : ''),
        h('td', {}, a.contentType),
        h('td', {}, `${a.size} bytes`),
        h(
          'td',
          { class: 'row-actions' },
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              'aria-label': `Download ${a.filename ?? `attachment ${a.index}`}`,
              onclick: () => void download(partBase, a, problem),
            },
            'Download',
          ),
        ),
      ),
    ),
  );
}

/** The HTML part in its frame, with the remote-image notice and its "Show remote images" button. */
async function htmlSection(partBase, m) {
  const section = h('section', { 'aria-labelledby': 'html-title' }, h('h2', { id: 'html-title' }, 'HTML'));
  const images = await cidImages(partBase, m.attachments);
  const frame = mailFrame(`HTML of '${m.subject || '(no subject)'}'`);
  const notice = h('p', { class: 'note', role: 'status', hidden: true });
  section.append(notice, frame.element);
  const render = (remoteImages) => {
    const shown = mailDocument(m.html, { cidImages: images, remoteImages });
    const parts = [];
    if (shown.remoteImages > 0) {
      parts.push(
        `${shown.remoteImages} remote image${shown.remoteImages === 1 ? ' was' : 's were'} not loaded ` +
          '(loading tells the sender that the message was opened). ',
        h('button', { type: 'button', class: 'small', onclick: () => render(true) }, 'Show remote images'),
      );
    }
    if (shown.inertLinks > 0) {
      parts.push(
        h(
          'span',
          { class: 'inert-links' },
          ` ${shown.inertLinks} link${shown.inertLinks === 1 ? '' : 's'} to scripts or other unsafe addresses ${shown.inertLinks === 1 ? 'was' : 'were'} disabled.`,
        ),
      );
    }
    replace(notice, parts);
    notice.hidden = parts.length === 0;
    void frame.show(shown.srcdoc);
  };
  render(false);
  return section;
}

async function renderInbound(main, { tenantId, id, timeline, m, names, destinations }) {
  const partBase = path('tenants', tenantId, 'messages', id);
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const notice = h('p', { role: 'status', hidden: true });
  const facts = h('div', {}, headerFacts(m));
  const events = h('div', {}, timelineTable(tenantId, timeline.events, names));
  main.append(problem, notice);

  /** After an action: the status, reason and timeline as the engine now has them. */
  async function reread() {
    try {
      const [now, again] = await Promise.all([
        api('GET', partBase),
        api('GET', path('tenants', tenantId, 'trace', 'inbound', id)),
      ]);
      replace(facts, headerFacts(now));
      replace(events, timelineTable(tenantId, again.events, names));
      main.querySelector('.page-head [data-status]')?.replaceWith(statusBadge(now.status));
    } catch (err) {
      // deleted: nothing left to read; the notice says what happened
      if (err.status !== 404) {
        problem.textContent = err.message;
        problem.hidden = false;
      }
    }
  }

  if (m.status === 'quarantined' || m.status === 'unrouted') {
    const actions = heldActions({
      tenantId,
      serverId: m.serverId,
      message: m,
      destinations,
      onDone: (outcome, verb) => {
        problem.hidden = true;
        notice.textContent = outcomeWords(outcome, verb, destinations);
        notice.hidden = false;
        actions.closest('.held-actions')?.remove();
        void reread();
      },
      onError: (err) => {
        problem.textContent = err.message;
        problem.hidden = false;
      },
    });
    main.append(h('div', { class: 'held-actions' }, 'This message is held. ', actions));
  }
  main.append(
    h('section', { 'aria-labelledby': 'headers-title' }, h('h2', { id: 'headers-title' }, 'Headers'), facts),
    h('section', { 'aria-labelledby': 'timeline-title' }, h('h2', { id: 'timeline-title' }, 'Timeline'), events),
  );
  if (m.text !== null) {
    main.append(
      h(
        'section',
        { 'aria-labelledby': 'text-title' },
        h('h2', { id: 'text-title' }, 'Text'),
        h('pre', { class: 'mail-text' }, m.text),
      ),
    );
  }
  if (m.html !== null) main.append(await htmlSection(partBase, m));
  if (m.attachments.length > 0) {
    main.append(
      h(
        'section',
        { 'aria-labelledby': 'attachments-title' },
        h('h2', { id: 'attachments-title' }, `Attachments (${m.attachments.length})`),
        attachmentList(partBase, m.attachments, problem),
      ),
    );
  }
}

export async function renderMessage(main, { tenantId, kind, id }) {
  let tenant, timeline, message, servers, destinations;
  try {
    [tenant, timeline, message, { servers }, { destinations }] = await Promise.all([
      api('GET', path('tenants', tenantId)),
      api('GET', path('tenants', tenantId, 'trace', kind, id)),
      kind === 'inbound' ? api('GET', path('tenants', tenantId, 'messages', id)) : null,
      api('GET', path('tenants', tenantId, 'servers')),
      api('GET', path('tenants', tenantId, 'destinations')),
    ]);
  } catch (err) {
    breadcrumbs([['Tenants', '#/'], ['Message']]);
    failure(main, err);
    return;
  }
  breadcrumbs([
    ['Tenants', '#/'],
    [tenant.name, href('tenants', tenantId)],
    ['Message trace', href('tenants', tenantId, 'trace')],
    [timeline.subject || '(no subject)'],
  ]);
  heading(main, timeline.subject || '(no subject)', statusBadge(timeline.status));
  main.append(h('p', { class: 'hint' }, kind === 'inbound' ? 'Inbound message' : 'Outbound message'));
  const names = {
    servers: new Map(servers.map((x) => [x.id, x.name])),
    destinations: new Map(destinations.map((x) => [x.id, x.name])),
  };
  if (kind === 'inbound') {
    await renderInbound(main, { tenantId, id, timeline, m: message, names, destinations });
    return;
  }
  await renderOutbound(main, { tenantId, id, timeline, names, destinations });
}

/** Why an outgoing message that is not sent yet waits (the API's `waitingFor`), in words. */
const WAITING_FOR = {
  retry: 'its next attempt',
  'rate-limit': "the account's hourly message limit",
  relay: 'the SMTP server to answer again',
  credentials: 'a working sign-in to the SMTP server',
};

function outboundFacts(o, names, destinations) {
  const from = destinations.find((d) => d.id === o.destinationId);
  const failing = o.lastReply && o.status !== 'sent';
  const rows = [
    ['From', from ? `${from.name} <${from.address}>` : o.destinationId],
    ['To', o.recipients.join(', ') || '—'],
    ['Subject', o.subject || '(no subject)'],
    ['Status', statusBadge(o.status)],
    ['Attempts', String(o.attempts)],
    [failing ? 'Last error' : 'Last SMTP reply', o.lastReply ?? '—'],
    o.waitingFor && ['Waiting for', `${WAITING_FOR[o.waitingFor] ?? o.waitingFor} (until ${when(o.waitingUntil)})`],
    o.refusedRecipients.length > 0 && [
      'Refused',
      o.refusedRecipients.map((r) => `${r.address}: ${r.reply ?? r.responseCode ?? ''}`).join('; '),
    ],
    ['E-mail server', names.servers.get(o.serverId) ?? o.serverId],
    ['Message-ID', o.messageId],
    ['Accepted', when(o.createdAt)],
    ['Sent', when(o.sentAt)],
  ];
  return factList(rows);
}

/** An outgoing message: what an operator asks first (to whom, how far it got, why not), then its timeline. */
async function renderOutbound(main, { tenantId, id, timeline, names, destinations }) {
  const section = h('section', { 'aria-labelledby': 'outbound-title' }, h('h2', { id: 'outbound-title' }, 'Message'));
  try {
    const o = await api('GET', path('tenants', tenantId, 'destinations', timeline.destinationId, 'outbound', id));
    section.append(outboundFacts(o, names, destinations));
  } catch (err) {
    section.append(h('p', { class: 'error', role: 'alert' }, err.message));
  }
  main.append(
    section,
    h(
      'section',
      { 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      timelineTable(tenantId, timeline.events, names),
    ),
  );
}

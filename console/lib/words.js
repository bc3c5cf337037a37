/** The engine's states in words an administrator reads at a glance. */

export const CONNECTION = {
  connecting: 'Connecting',
  idle: 'Connected (IDLE)',
  polling: 'Connected (polling)',
  authError: 'Login refused',
  connectError: 'Cannot connect',
  disabled: 'Disabled',
  stopped: 'Not watched',
};

export const HEALTH = { ok: 'OK', degraded: 'Degraded', down: 'Down', unknown: 'Not checked yet' };

export const QUEUE = {
  ok: 'Ready',
  paused: 'Paused: the SMTP server cannot be reached',
  held: 'Held: the SMTP login was refused',
};

/** A CSS class for a state's badge. */
export function tone(state) {
  if (['idle', 'polling', 'ok', 'COMPLETE'].includes(state)) return 'badge good';
  if (['authError', 'connectError', 'down', 'held', 'paused', 'EXPIRED', 'ERROR', 'REAUTH_REQUIRED'].includes(state)) {
    return 'badge bad';
  }
  return 'badge';
}

export function smtpAuthWords(auth) {
  if (auth.mode === 'none') return 'no authentication';
  if (auth.mode === 'imap') return 'IMAP settings';
  return `${auth.user} (${auth.method === 'oauth2' ? 'OAuth 2.0' : 'password'})`;
}

/** A message's status (inbound or outbound) in words. */
export const MESSAGE_STATUS = {
  routed: 'Routed',
  unrouted: 'Unrouted',
  quarantined: 'Quarantined',
  duplicate: 'Duplicate',
  heartbeat: 'Heartbeat',
  queued: 'Queued',
  sending: 'Sending',
  deferred: 'Deferred (will retry)',
  sent: 'Sent',
  failed: 'Failed',
  deleted: 'Deleted',
};

const STATUS_TONE = {
  routed: 'good',
  sent: 'good',
  quarantined: 'bad',
  failed: 'bad',
  unrouted: 'warn',
  deferred: 'warn',
};

/** A badge for a message's status, its raw value in `data-status` for tests and styles. */
export function statusBadge(status) {
  const el = document.createElement('span');
  el.className = STATUS_TONE[status] ? `badge ${STATUS_TONE[status]}` : 'badge';
  el.dataset.status = status;
  el.textContent = MESSAGE_STATUS[status] ?? status;
  return el;
}

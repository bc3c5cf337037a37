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

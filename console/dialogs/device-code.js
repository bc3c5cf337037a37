/**
 * "Get Code": OAuth 2.0 device-code sign-in for the IMAP or SMTP side of a server. Shows the
 * code, a link to sign in, a countdown (900 seconds at Microsoft) and the status, which is
 * polled until it is COMPLETE, EXPIRED or failed.
 */
import { api, path } from '../lib/api.js';
import { h, replace } from '../lib/dom.js';
import { signInLink } from '../lib/sign-in-link.js';

/** [2000] how often the status is asked for while a sign-in is pending, in milliseconds. */
const POLL_MS = 2000;
const FINAL = new Set(['COMPLETE', 'EXPIRED', 'ERROR', 'REAUTH_REQUIRED']);
const WORDS = {
  INCOMPLETE: 'not signed in',
  PENDING: 'waiting for the sign-in',
  COMPLETE: 'signed in',
  EXPIRED: 'the code expired; get a new one',
  REAUTH_REQUIRED: 'the sign-in must be renewed; get a new code',
  ERROR: 'the sign-in failed',
};

/**
 * purpose: 'imap' | 'smtp'. saveFirst(): saves the server and resolves with its id (null when
 * the form has errors): a code is always requested for the settings as saved.
 */
export function deviceCodePanel({ tenantId, purpose, saveFirst }) {
  const statusValue = h('strong', { class: 'oauth-status', 'data-purpose': purpose }, 'INCOMPLETE');
  const statusWords = h('span', {}, '');
  const status = h('p', { role: 'status' }, 'OAuth authentication status: ', statusValue, ' ', statusWords);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const codeArea = h('div', { class: 'device-code', hidden: true });
  const button = h('button', { type: 'button', onclick: () => void start() }, 'Get Code');
  const element = h(
    'div',
    { class: 'oauth-panel', 'aria-label': `${purpose.toUpperCase()} sign-in` },
    h(
      'div',
      { class: 'row' },
      h('span', { class: 'label' }, 'Request authentication code'),
      button,
      h('span', { class: 'hint' }, 'Saves the server first.'),
    ),
    codeArea,
    status,
    error,
  );
  let serverId = null;
  let pollTimer = null;
  let tickTimer = null;

  function stop() {
    clearInterval(pollTimer);
    clearInterval(tickTimer);
    pollTimer = null;
    tickTimer = null;
  }

  function show(state) {
    const code = state?.status ?? 'INCOMPLETE';
    statusValue.textContent = code;
    statusValue.dataset.status = code;
    let words = WORDS[code] ?? '';
    if (code === 'COMPLETE' && state.account) words = `signed in as ${state.account}`;
    // A delegate (or a service account) signed in for another mailbox: say for which.
    if (code === 'COMPLETE' && state.mailbox && state.account && !sameAddress(state.account, state.mailbox)) {
      words += ` for mailbox ${state.mailbox}`;
    }
    if (state?.sharesImapSignIn) words += ' (shares the IMAP sign-in)';
    if (state?.error) words += `: ${state.error}`;
    statusWords.textContent = words ? `(${words})` : '';
    if (FINAL.has(code) && pollTimer) {
      stop();
      if (code === 'COMPLETE') codeArea.hidden = true;
    }
  }

  async function refresh() {
    if (!serverId) return;
    try {
      const all = await api('GET', `${path('tenants', tenantId, 'servers', serverId)}/oauth`);
      show(all[purpose]);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  async function start() {
    error.hidden = true;
    button.disabled = true;
    try {
      const id = await saveFirst();
      if (!id) return;
      serverId = id;
      const code = await api('POST', `${path('tenants', tenantId, 'servers', id)}/oauth/device-code`, { purpose });
      // The authority the code came from: its host is the one sign-in page that may be linked.
      const server = await api('GET', path('tenants', tenantId, 'servers', id));
      const authority = server[purpose]?.auth?.oauth2?.authorityHost ?? server.imap?.auth?.oauth2?.authorityHost;
      showCode(code, authority);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function showCode(code, authorityHost) {
    const link = signInLink(code.verificationUri, authorityHost);
    stop();
    const expiresAt = Date.now() + code.expiresIn * 1000;
    const countdown = h('span', { class: 'countdown' }, String(code.expiresIn));
    const copy = h('button', { type: 'button', class: 'small' }, 'Copy code');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(code.userCode);
        copy.textContent = 'Copied';
      } catch {
        copy.textContent = 'Select the code and copy it';
      }
    });
    replace(
      codeArea,
      h('p', {}, 'Code: ', h('code', { class: 'user-code' }, code.userCode), ' ', copy),
      h(
        'p',
        {},
        // Linked only when it is an https page of the authority's host or Microsoft's device
        // login (sign-in-link.js); otherwise the address is shown as text for a person to judge.
        link
          ? h('a', { href: link, target: '_blank', rel: 'noopener noreferrer', class: 'sign-in-link' }, 'Authenticate')
          : 'Authenticate',
        ` at ${code.verificationUri} and enter the code.`,
      ),
      h(
        'p',
        { class: 'hint' },
        'The OAuth process expires in ',
        countdown,
        ' seconds. If it is not finished in time, get a new code.',
      ),
      h('p', { class: 'hint' }, code.message),
    );
    codeArea.hidden = false;
    show({ status: 'PENDING' });
    tickTimer = setInterval(() => {
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      countdown.textContent = String(left);
      if (left === 0) {
        show({ status: 'EXPIRED' });
        stop();
      }
    }, 1000);
    pollTimer = setInterval(() => void refresh(), POLL_MS);
  }

  return {
    element,
    stop,
    /** Shows the stored status of a saved server. */
    async load(id) {
      serverId = id;
      await refresh();
    },
  };
}

function sameAddress(a, b) {
  return String(a).toLowerCase() === String(b).toLowerCase();
}

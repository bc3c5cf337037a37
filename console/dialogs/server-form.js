/**
 * The e-mail server form of the Web Manager: IMAP settings, SMTP settings (authentication
 * "None / Use IMAP settings / Use settings below"), password + confirmation, OAuth 2.0 fields,
 * heartbeat address, rate limit, maximum IMAP sessions. Inputs are named by the API's field
 * paths; `body()` builds the API's request and `check()` the checks worth making before sending.
 */
import { h } from '../lib/dom.js';
import { checkbox, input, select, value } from '../lib/forms.js';

const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** The `client_email` of a pasted service account key file, or '' (not JSON, or none). */
function keyEmail(key) {
  try {
    const parsed = JSON.parse(key);
    return typeof parsed?.client_email === 'string' ? parsed.client_email : '';
  } catch {
    return '';
  }
}

/** A side's encryption (`tls` of the API; shared/tls-mode.ts says what each does). */
const TLS_OPTIONS = [
  ['implicit', 'SSL/TLS from the start ("Use SSL")'],
  ['starttls-required', 'STARTTLS, required'],
  ['starttls-when-offered', 'STARTTLS when the server offers it, else unencrypted'],
  ['none', 'None: unencrypted'],
];

/** The encryption select of a side, with the warning shown while `none` is chosen. */
function tlsField(side, mode) {
  return h(
    'div',
    {},
    select({
      label: 'Encryption',
      name: `${side}.tls`,
      value: mode,
      options: TLS_OPTIONS,
      hint: 'Certificates are always verified; a private CA is named below.',
    }),
    h(
      'p',
      { class: 'warning', 'data-tls-none': side, role: 'alert' },
      'Unencrypted: the password and every message cross the network in plain text.',
    ),
  );
}

function authFields(prefix, auth, mode, panelSlot) {
  const oauth = auth?.oauth2 ?? null;
  const stored = mode !== 'add' && auth?.hasPassword;
  const password = h(
    'div',
    { class: 'group', 'data-auth': `${prefix}:password` },
    input({
      label: 'Password',
      name: `${prefix}.password`,
      type: 'password',
      placeholder: stored ? 'unchanged' : undefined,
      hint: stored
        ? 'Leave empty to keep the stored password (while the user name, host, port, TLS mode, CA file and proxy stay the same).'
        : undefined,
    }),
    input({ label: 'Confirm password', name: `${prefix}.confirmPassword`, type: 'password' }),
  );
  const flow = oauth?.flow ?? 'device-code';
  const keptSecret = mode !== 'add' && oauth?.hasClientSecret;
  const clientSecret = h(
    'div',
    { class: 'group', 'data-flow': `${prefix}:client-credentials` },
    input({
      label: 'Client secret',
      name: `${prefix}.clientSecret`,
      type: 'password',
      placeholder: keptSecret && flow === 'client-credentials' ? 'unchanged' : undefined,
    }),
  );
  // A Google service account signs in with its key file: pasted, or read from a file here (it
  // never leaves the browser but in the request; the engine seals it and never shows it again).
  const keyText = input({
    label: 'Service account key (JSON key file)',
    name: `${prefix}.serviceAccountKey`,
    type: 'textarea',
    placeholder:
      keptSecret && flow === 'service-account' ? 'unchanged (a key is stored)' : '{"type": "service_account", …}',
    hint: 'Paste the JSON key file (or its PEM private key), or choose the file below.',
  });
  const keyFile = h('input', {
    type: 'file',
    accept: '.json,.pem,application/json',
    'aria-label': 'Service account key file',
    onchange: async (event) => {
      const file = event.target.files?.[0];
      if (!file) return;
      keyText.querySelector('textarea').value = await file.text();
      event.target.value = '';
    },
  });
  const serviceAccount = h(
    'div',
    { class: 'group', 'data-flow': `${prefix}:service-account` },
    keyText,
    h('div', { class: 'field' }, keyFile),
    h(
      'p',
      { class: 'hint' },
      "Google Workspace: the mailbox is the IMAP user name; an administrator grants the service account's client ID " +
        'the scope https://mail.google.com/ (domain-wide delegation).',
    ),
  );
  const microsoftOnly = (...children) =>
    h('div', { class: 'group', 'data-flow-not': `${prefix}:service-account` }, ...children);
  const oauthGroup = h(
    'div',
    { class: 'group', 'data-auth': `${prefix}:oauth2` },
    select({
      label: 'Flow',
      name: `${prefix}.flow`,
      value: flow,
      options: [
        ['device-code', 'Sign in with a code (Get Code)'],
        ['client-credentials', 'Application (client secret)'],
        ['service-account', 'Google service account (key file)'],
      ],
    }),
    input({
      label: 'OAuth client ID',
      name: `${prefix}.clientId`,
      value: oauth?.clientId,
      required: prefix === 'imap.auth',
      hint:
        prefix === 'imap.auth'
          ? 'Microsoft: the Application (client) ID. Google service account: its e-mail (client_email; taken from the key file when empty).'
          : 'Leave empty to use the IMAP side’s app registration.',
    }),
    microsoftOnly(
      input({
        label: 'OAuth tenant ID',
        name: `${prefix}.directoryId`,
        value: oauth?.directoryId || undefined,
        required: prefix === 'imap.auth',
        hint:
          prefix === 'imap.auth'
            ? 'The Directory (tenant) ID of the app registration, or a verified domain.'
            : 'Leave empty to use the IMAP side’s.',
      }),
    ),
    clientSecret,
    serviceAccount,
    input({
      label: 'Authority host',
      name: `${prefix}.authorityHost`,
      value: oauth?.authorityHost,
      placeholder: 'https://login.microsoftonline.com',
      hint: 'Only for sovereign or custom clouds (Google: https://oauth2.googleapis.com, the default).',
    }),
    microsoftOnly(
      input({
        label: 'Office 365 server URL',
        name: `${prefix}.serverUrl`,
        value: oauth?.serverUrl ?? undefined,
        placeholder: 'https://outlook.office365.com',
        hint: 'Only for a custom Office 365 URL (the server the tokens are for).',
      }),
    ),
    h(
      'div',
      { class: 'group', 'data-flow': `${prefix}:device-code` },
      h(
        'p',
        { class: 'hint' },
        'A Microsoft 365 shared mailbox: give its address as the user name, and sign in as a person with Full Access ' +
          '(and Send As) on it.',
      ),
      panelSlot,
    ),
  );
  return [password, oauthGroup];
}

/**
 * The choices of a server's proxy: the engine's default, none, and each named proxy; a stored
 * name the engine no longer has stays selectable (and says so) rather than silently changing.
 */
function proxyOptions(proxies, stored) {
  const options = [
    [
      '',
      proxies.default ? `The engine's default proxy (${proxies.default})` : "The engine's default (no proxy: directly)",
    ],
    ['none', 'No proxy (directly)'],
    ...proxies.named.map((p) => [p.name, `${p.name} (${p.proxy})`]),
  ];
  if (stored !== null && stored !== 'none' && !proxies.named.some((p) => p.name === stored))
    options.push([stored, `${stored} (not configured in this engine)`]);
  return options;
}

/**
 * server: a ServerView (edit, copy) or null (add). panels: { imap, smtp } elements of the
 * Get Code panels, placed where OAuth device-code sign-in is chosen.
 */
export function serverForm(server, mode, panels, destinations = [], proxies = { default: null, named: [] }) {
  let stored = server;
  const imap = server?.imap;
  const smtp = server?.smtp;
  const smtpAuth = smtp?.auth;
  const postProcess = server?.postProcess ?? 'seen';
  // Only an edited server has destinations that use it (its default must be one of them).
  const usable = mode === 'edit' && server ? destinations.filter((d) => d.serverId === server.id) : [];
  const moveFolder = postProcess.startsWith('move:') ? postProcess.slice(5) : '';

  const form = h(
    'form',
    { class: 'server-form', novalidate: true },
    input({
      label: 'E-mail server name',
      name: 'name',
      value: mode === 'copy' ? '' : server?.name,
      required: true,
      hint: mode === 'copy' ? `A new name for the copy of '${server.name}'.` : undefined,
    }),
    checkbox({ label: 'Enabled (watch the mailbox and send)', name: 'enabled', checked: server?.enabled ?? true }),
    h(
      'fieldset',
      {},
      h('legend', {}, 'IMAP settings'),
      h(
        'div',
        { class: 'columns' },
        input({ label: 'Host name', name: 'imap.host', value: imap?.host, required: true }),
        input({
          label: 'Port number',
          name: 'imap.port',
          type: 'number',
          min: 1,
          max: 65535,
          value: imap?.port,
          hint: 'Empty: 993 with SSL/TLS from the start, else 143.',
        }),
      ),
      tlsField('imap', imap?.tls ?? 'implicit'),
      input({ label: 'User name', name: 'imap.user', value: imap?.user, required: true }),
      select({
        label: 'Authentication',
        name: 'imap.auth.method',
        value: imap?.auth.method ?? 'password',
        options: [
          ['password', 'Password'],
          ['oauth2', 'OAuth 2.0'],
        ],
      }),
      authFields('imap.auth', imap?.auth, mode, panels.imap),
      input({
        label: 'Trusted CA file',
        name: 'imap.caFile',
        value: imap?.caFile,
        placeholder: '/etc/mailroom/private-ca.pem',
        hint: "Optional: a PEM file on the engine's host, for a server with a private CA. Certificates are always verified.",
      }),
      input({
        label: 'Maximum IMAP sessions',
        name: 'imap.maxSessions',
        type: 'number',
        min: 0,
        max: 50,
        value: imap?.maxSessions ?? 0,
        hint: "0 = the engine's default.",
      }),
      input({
        label: 'Folders watched',
        name: 'imap.folders',
        type: 'textarea',
        value: (imap?.folders ?? []).join('\n'),
        placeholder: 'INBOX',
        hint: 'One a line; empty: INBOX. Gmail: labels are folders; a message in several is routed once. All Mail is not watched.',
      }),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'SMTP settings'),
      h(
        'div',
        { class: 'columns' },
        input({ label: 'Host name', name: 'smtp.host', value: smtp?.host, required: true }),
        input({
          label: 'Port number',
          name: 'smtp.port',
          type: 'number',
          min: 1,
          max: 65535,
          value: smtp?.port,
          required: true,
        }),
      ),
      tlsField('smtp', smtp?.tls ?? 'starttls-when-offered'),
      select({
        label: 'Authentication',
        name: 'smtp.auth.mode',
        value: smtpAuth?.mode ?? 'imap',
        options: [
          ['none', 'None'],
          ['imap', 'Use IMAP settings'],
          ['custom', 'Use settings below'],
        ],
      }),
      h(
        'div',
        { class: 'group', 'data-mode': 'custom' },
        select({
          label: 'Method',
          name: 'smtp.auth.method',
          value: smtpAuth?.method ?? 'password',
          options: [
            ['password', 'Password'],
            ['oauth2', 'OAuth 2.0'],
          ],
        }),
        input({ label: 'User name', name: 'smtp.auth.user', value: smtpAuth?.user, required: true }),
        authFields('smtp.auth', smtpAuth, mode, panels.smtp),
      ),
      input({
        label: 'Heartbeat e-mail address',
        name: 'smtp.heartbeatAddress',
        // text: the browser's e-mail type refuses Unicode local parts; the engine checks it.
        type: 'text',
        value: smtp?.heartbeatAddress,
        hint: 'A test message goes here every 15 minutes to check the connection.',
      }),
      input({
        label: 'Message rate limit (per hour)',
        name: 'smtp.rateLimitPerHour',
        type: 'number',
        min: 0,
        value: smtp?.rateLimitPerHour ?? 0,
        hint: '0 = no limit.',
      }),
      input({
        label: 'Trusted CA file',
        name: 'smtp.caFile',
        value: smtp?.caFile,
        placeholder: '/etc/mailroom/private-ca.pem',
        hint: "Optional: a PEM file on the engine's host, for a relay with a private CA. Certificates are always verified.",
      }),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Proxy'),
      select({
        label: 'IMAP and SMTP connections go',
        name: 'proxy',
        value: server?.proxy ?? '',
        options: proxyOptions(proxies, server?.proxy ?? null),
        hint: 'Through an HTTP proxy (CONNECT) the engine is configured with, or directly.',
      }),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'After a message is stored'),
      select({
        label: 'In the mailbox',
        name: 'postProcess',
        value: postProcess.startsWith('move:') ? 'move' : postProcess,
        options: [
          ['seen', 'Mark it as seen'],
          ['delete', 'Delete it'],
          ['move', 'Move it to a folder'],
        ],
      }),
      h(
        'div',
        { class: 'group', 'data-post': 'move' },
        input({ label: 'Folder', name: 'moveFolder', value: moveFolder }),
      ),
      usable.length > 0 &&
        select({
          label: 'Mail that matches no destination goes to',
          name: 'defaultDestinationId',
          value: server?.defaultDestinationId ?? '',
          options: [['', 'No destination (the unrouted list)'], ...usable.map((d) => [d.id, d.name])],
        }),
    ),
  );

  const v = (name) => value(form, name);
  const text = (name) => (v(name) ?? '').trim();

  /** Shows the groups that the selects ask for. */
  function sync() {
    const smtpMethod = v('smtp.auth.mode') === 'custom' ? v('smtp.auth.method') : null;
    const shown = {
      'imap.auth:password': v('imap.auth.method') === 'password',
      'imap.auth:oauth2': v('imap.auth.method') === 'oauth2',
      'smtp.auth:password': smtpMethod === 'password',
      'smtp.auth:oauth2': smtpMethod === 'oauth2',
    };
    for (const el of form.querySelectorAll('[data-auth]')) el.hidden = !shown[el.dataset.auth];
    for (const el of form.querySelectorAll('[data-tls-none]')) el.hidden = v(`${el.dataset.tlsNone}.tls`) !== 'none';
    for (const el of form.querySelectorAll('[data-flow]')) {
      const [prefix, flow] = el.dataset.flow.split(':');
      el.hidden = v(`${prefix}.flow`) !== flow;
    }
    for (const el of form.querySelectorAll('[data-flow-not]')) {
      const [prefix, flow] = el.dataset.flowNot.split(':');
      el.hidden = v(`${prefix}.flow`) === flow;
    }
    for (const el of form.querySelectorAll('[data-mode]')) el.hidden = v('smtp.auth.mode') !== el.dataset.mode;
    for (const el of form.querySelectorAll('[data-post]')) el.hidden = v('postProcess') !== el.dataset.post;
  }
  form.addEventListener('change', (event) => {
    if (event.target.name === 'smtp.port' && event.target.value === '465')
      form.elements.namedItem('smtp.tls').value = 'implicit';
    sync();
  });
  sync();

  function authBody(prefix, method) {
    if (method === 'password') {
      const out = { method: 'password' };
      if (v(`${prefix}.password`)) {
        out.password = v(`${prefix}.password`);
        out.confirmPassword = v(`${prefix}.confirmPassword`);
      }
      return out;
    }
    const out = { method: 'oauth2', flow: v(`${prefix}.flow`) };
    if (out.flow === 'service-account') {
      const key = text(`${prefix}.serviceAccountKey`);
      const clientId = text(`${prefix}.clientId`) || keyEmail(key);
      if (clientId) out.clientId = clientId;
      if (text(`${prefix}.authorityHost`)) out.authorityHost = text(`${prefix}.authorityHost`);
      if (key) out.clientSecret = key;
      return out;
    }
    for (const key of ['clientId', 'directoryId', 'authorityHost', 'serverUrl'])
      if (text(`${prefix}.${key}`)) out[key] = text(`${prefix}.${key}`);
    if (out.flow === 'client-credentials' && v(`${prefix}.clientSecret`))
      out.clientSecret = v(`${prefix}.clientSecret`);
    return out;
  }

  /** The mode of the check in progress ('add', 'edit', 'copy'). */
  let checking = mode;
  const currentModeOf = () => checking;

  const integer = (name, fallback) => (text(name) === '' ? fallback : Number(text(name)));

  /** The request body for POST (add), PATCH (edit) or POST …/copy. */
  function body() {
    const mode = v('smtp.auth.mode');
    const smtpAuthBody =
      mode === 'custom'
        ? { mode, user: text('smtp.auth.user'), ...authBody('smtp.auth', v('smtp.auth.method')) }
        : { mode };
    const imapBody = {
      host: text('imap.host'),
      tls: v('imap.tls'),
      user: text('imap.user'),
      auth: authBody('imap.auth', v('imap.auth.method')),
      maxSessions: integer('imap.maxSessions', 0),
      caFile: text('imap.caFile') || null,
      folders: text('imap.folders')
        .split('\n')
        .map((f) => f.trim())
        .filter(Boolean),
    };
    if (text('imap.port') !== '') imapBody.port = integer('imap.port');
    const post = v('postProcess');
    return {
      name: text('name'),
      enabled: v('enabled'),
      imap: imapBody,
      smtp: {
        host: text('smtp.host'),
        port: integer('smtp.port'),
        tls: v('smtp.tls'),
        auth: smtpAuthBody,
        heartbeatAddress: text('smtp.heartbeatAddress') || null,
        rateLimitPerHour: integer('smtp.rateLimitPerHour', 0),
        caFile: text('smtp.caFile') || null,
      },
      postProcess: post === 'move' ? `move:${text('moveFolder')}` : post,
      proxy: v('proxy') || null,
      ...(usable.length > 0 && { defaultDestinationId: v('defaultDestinationId') || null }),
    };
  }

  /**
   * Whether the form still points a side at the endpoint its stored secret was entered for: the
   * same host, port, TLS mode, CA file and proxy. The engine sends a stored secret nowhere
   * else, so any change asks for it again (as the API does, naming the password field).
   */
  function sameEndpoint(side) {
    const a = stored[side];
    const tls = v(`${side}.tls`);
    const port =
      text(`${side}.port`) === '' && side === 'imap' ? (tls === 'implicit' ? 993 : 143) : integer(`${side}.port`);
    return (
      a.host.toLowerCase() === text(`${side}.host`).toLowerCase() &&
      a.port === port &&
      a.tls === tls &&
      (a.caFile ?? null) === (text(`${side}.caFile`) || null) &&
      (stored.proxy ?? null) === (v('proxy') || null)
    );
  }

  /**
   * A password is needed unless a stored one stays valid (same user name and endpoint, see
   * sameEndpoint; for IMAP also the SMTP endpoint when SMTP logs in with it): the edited
   * server's, or for a copy the original's.
   */
  function needsPassword(side, currentMode) {
    if (currentMode === 'add' || !stored) return true;
    if (side === 'imap') {
      const a = stored.imap;
      const smtpShares = v('smtp.auth.mode') === 'imap';
      return !(
        a.auth.method === 'password' &&
        a.auth.hasPassword &&
        a.user === text('imap.user') &&
        sameEndpoint('imap') &&
        (!smtpShares || (stored.smtp.auth.mode === 'imap' && sameEndpoint('smtp')))
      );
    }
    const a = stored.smtp;
    return !(
      a.auth.mode === 'custom' &&
      a.auth.method === 'password' &&
      a.auth.hasPassword &&
      a.auth.user === text('smtp.auth.user') &&
      sameEndpoint('smtp')
    );
  }

  /** Whether the side has a service account key stored that this form may keep (same flow). */
  function storedKey(side) {
    if (currentModeOf() === 'add' || !stored) return false;
    const auth = side === 'imap' ? stored.imap.auth : stored.smtp.auth;
    return auth.oauth2?.flow === 'service-account' && auth.oauth2.hasClientSecret;
  }

  /** Checks made before sending: required fields, numbers, the password confirmation. */
  function check(currentMode) {
    checking = currentMode;
    const errors = [];
    const required = (name, message) => {
      if (text(name) === '') errors.push({ field: name, message });
    };
    const range = (name, min, max) => {
      const n = Number(text(name));
      if (text(name) !== '' && (!Number.isInteger(n) || n < min || n > max)) {
        errors.push({ field: name, message: `Enter a whole number from ${min} to ${max}.` });
      }
    };
    const credentials = (prefix, side, method) => {
      if (method === 'password') {
        const pw = v(`${prefix}.password`);
        if (!pw && needsPassword(side, currentMode))
          errors.push({ field: `${prefix}.password`, message: 'Enter the password.' });
        if (pw && v(`${prefix}.confirmPassword`) !== pw) {
          errors.push({
            field: `${prefix}.confirmPassword`,
            message: v(`${prefix}.confirmPassword`) ? 'The passwords do not match.' : 'Confirm the password.',
          });
        }
        return;
      }
      if (v(`${prefix}.flow`) === 'service-account') {
        const key = text(`${prefix}.serviceAccountKey`);
        if (!key && !storedKey(side)) {
          errors.push({ field: `${prefix}.serviceAccountKey`, message: 'Paste the JSON key file or choose it.' });
        }
        if (!text(`${prefix}.clientId`) && !keyEmail(key)) {
          errors.push({ field: `${prefix}.clientId`, message: "Enter the service account's e-mail (client_email)." });
        }
        return;
      }
      // The SMTP side takes the IMAP side's app registration when it names none.
      if (side === 'imap' || v('imap.auth.method') !== 'oauth2') {
        required(`${prefix}.clientId`, 'Enter the Application (client) ID.');
        required(`${prefix}.directoryId`, 'Enter the Directory (tenant) ID.');
      }
      const host = text(`${prefix}.authorityHost`);
      if (host && !/^https:\/\/[^\s/]+/.test(host)) {
        errors.push({ field: `${prefix}.authorityHost`, message: 'The authority host starts with https://.' });
      }
      const server = text(`${prefix}.serverUrl`);
      if (server && !/^https:\/\/[^\s/?#]+\/?$/.test(server)) {
        errors.push({
          field: `${prefix}.serverUrl`,
          message: 'The server URL is https:// and a host name, nothing after.',
        });
      }
    };
    required('name', 'Enter a name for the e-mail server.');
    required('imap.host', 'Enter the IMAP host name.');
    range('imap.port', 1, 65535);
    required('imap.user', 'Enter the IMAP user name.');
    credentials('imap.auth', 'imap', v('imap.auth.method'));
    range('imap.maxSessions', 0, 50);
    required('smtp.host', 'Enter the SMTP host name.');
    required('smtp.port', 'Enter the SMTP port number.');
    range('smtp.port', 1, 65535);
    if (v('smtp.auth.mode') === 'custom') {
      required('smtp.auth.user', 'Enter the SMTP user name.');
      credentials('smtp.auth', 'smtp', v('smtp.auth.method'));
    }
    const heartbeat = text('smtp.heartbeatAddress');
    if (heartbeat && !EMAIL.test(heartbeat)) {
      errors.push({ field: 'smtp.heartbeatAddress', message: 'Enter an e-mail address (or leave it empty).' });
    }
    range('smtp.rateLimitPerHour', 0, 1_000_000);
    if (v('postProcess') === 'move') required('moveFolder', 'Enter the folder to move messages to.');
    return errors;
  }

  /**
   * The form field an API error's `field` stands for: a service account's key travels as
   * `clientSecret` but is typed in `serviceAccountKey`.
   */
  function fieldOf(apiField) {
    const key = /^(imap|smtp)\.auth\.clientSecret$/.exec(apiField ?? '');
    if (key && v(`${key[1]}.auth.flow`) === 'service-account') return `${key[1]}.auth.serviceAccountKey`;
    return apiField;
  }

  return {
    form,
    body,
    check,
    fieldOf,
    /** The server as saved now (after a Get Code saved it), for the password rules. */
    setStored(view) {
      stored = view;
    },
  };
}

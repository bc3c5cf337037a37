/** Add, edit and copy dialogs of a destination (a monitored address). */
import { api, path } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { openDialog } from '../lib/dialog.js';
import { checkbox, clearErrors, generalError, input, select, showApiError, showErrors, value } from '../lib/forms.js';

const TITLES = { add: 'Add destination', edit: 'Edit destination', copy: 'Copy destination' };
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** mode: 'add' | 'edit' | 'copy'; servers: the tenant's ServerViews for the "E-mail server" choice. */
export function openDestinationDialog({ tenantId, mode, destination = null, servers, onChanged }) {
  const d = destination;
  const copy = mode === 'copy';
  const general = generalError();
  const submit = h('button', { type: 'submit', class: 'primary' }, mode === 'edit' ? 'Save' : 'Add');
  const form = h(
    'form',
    { novalidate: true },
    input({
      label: 'Destination name',
      name: 'name',
      value: copy ? '' : d?.name,
      required: true,
      hint: copy ? `A new name for the copy of '${d.name}'.` : undefined,
    }),
    // type text: the browser's e-mail type refuses Unicode local parts (WHATWG's valid e-mail
    // address is ASCII); the engine checks the address and names what is wrong.
    input({ label: 'E-mail address', name: 'address', type: 'text', value: copy ? '' : d?.address, required: true }),
    input({ label: 'Description', name: 'description', type: 'textarea', value: d?.description }),
    input({
      label: 'From text',
      name: 'fromText',
      value: d?.fromText,
      hint: 'The name in the From box of replies, e.g. "ACME Support".',
    }),
    checkbox({ label: 'Monitored', name: 'monitored', checked: d?.monitored ?? true }),
    checkbox({ label: 'Available for outgoing', name: 'outgoing', checked: d?.outgoing ?? true }),
    select({
      label: 'E-mail server',
      name: 'serverId',
      value: d?.serverId ?? servers[0]?.id ?? '',
      options: [['', '(none)'], ...servers.map((s) => [s.id, s.name])],
    }),
    h(
      'details',
      { open: Boolean(d?.webhookUrl) },
      h('summary', {}, 'Webhook (push messages to an agent system)'),
      input({ label: 'Webhook URL', name: 'webhookUrl', type: 'url', value: d?.webhookUrl, placeholder: 'https://' }),
      input({
        label: 'Webhook secret',
        name: 'webhookSecret',
        type: 'password',
        placeholder: d?.hasWebhookSecret ? 'unchanged' : undefined,
        hint: 'At least 16 characters; signs each event (HMAC-SHA256). Write-only.',
      }),
    ),
    general,
    h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel')),
  );
  let changed = false;
  const dlg = openDialog({
    title: TITLES[mode],
    body: form,
    onClose: () => {
      if (changed && onChanged) onChanged();
    },
  });

  const text = (name) => (value(form, name) ?? '').trim();

  function check() {
    const errors = [];
    if (!text('name')) errors.push({ field: 'name', message: 'Enter a name for the destination.' });
    if (!EMAIL.test(text('address'))) errors.push({ field: 'address', message: 'Enter the e-mail address.' });
    if ((value(form, 'monitored') || value(form, 'outgoing')) && !text('serverId')) {
      errors.push({ field: 'serverId', message: 'A monitored or outgoing destination needs an e-mail server.' });
    }
    const secret = value(form, 'webhookSecret');
    if (secret && secret.length < 16) errors.push({ field: 'webhookSecret', message: 'Use at least 16 characters.' });
    return errors;
  }

  function body() {
    const out = {
      name: text('name'),
      address: text('address'),
      description: text('description'),
      fromText: text('fromText'),
      monitored: value(form, 'monitored'),
      outgoing: value(form, 'outgoing'),
      serverId: text('serverId') || null,
    };
    if (text('webhookUrl')) out.webhookUrl = text('webhookUrl');
    else if (d?.webhookUrl && !copy) out.webhookUrl = null;
    if (value(form, 'webhookSecret')) out.webhookSecret = value(form, 'webhookSecret');
    return out;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    const errors = check();
    if (errors.length > 0) return showErrors(form, general, errors);
    const base = path('tenants', tenantId, 'destinations');
    submit.disabled = true;
    try {
      if (mode === 'add') await api('POST', base, body());
      else if (copy) await api('POST', `${base}${path(d.id)}/copy`, body());
      else await api('PATCH', `${base}${path(d.id)}`, body());
      changed = true;
      dlg.close();
    } catch (err) {
      showApiError(form, general, err);
    } finally {
      submit.disabled = false;
    }
  });
  return dlg;
}

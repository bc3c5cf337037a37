/** Add, edit and copy dialogs of an e-mail server. */
import { api, path } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { openDialog } from '../lib/dialog.js';
import { clearErrors, generalError, showErrors } from '../lib/forms.js';
import { deviceCodePanel } from './device-code.js';
import { serverForm } from './server-form.js';

const TITLES = { add: 'Add e-mail server', edit: 'Edit e-mail server', copy: 'Copy e-mail server' };

/**
 * mode: 'add' | 'edit' | 'copy'; server: the ServerView to edit or copy; destinations: the tenant's
 * (an edited server may name one that uses it as its default); proxies: GET /api/v1/proxies (the
 * proxies a server can choose). onChanged runs after the dialog closes.
 */
export function openServerDialog({ tenantId, mode, server = null, destinations = [], proxies, onChanged }) {
  let currentMode = mode;
  let saved = mode === 'edit' ? server : null;
  let changed = false;

  const panels = {
    imap: deviceCodePanel({ tenantId, purpose: 'imap', saveFirst: () => saveAndStay() }),
    smtp: deviceCodePanel({ tenantId, purpose: 'smtp', saveFirst: () => saveAndStay() }),
  };
  const f = serverForm(server, mode, { imap: panels.imap.element, smtp: panels.smtp.element }, destinations, proxies);
  const general = generalError();
  const submit = h('button', { type: 'submit', class: 'primary' }, mode === 'edit' ? 'Save' : 'Add');
  f.form.append(
    general,
    h('div', { class: 'actions' }, submit, h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel')),
  );

  const dlg = openDialog({
    title: TITLES[mode],
    body: f.form,
    wide: true,
    onClose: () => {
      panels.imap.stop();
      panels.smtp.stop();
      if (changed && onChanged) onChanged();
    },
  });
  if (saved?.imap.auth.method === 'oauth2') void panels.imap.load(saved.id);
  if (saved?.smtp.auth.method === 'oauth2') void panels.smtp.load(saved.id);

  /** Checks and sends the form; resolves with the saved server or null (errors shown). */
  async function save() {
    clearErrors(f.form, general);
    const errors = f.check(currentMode);
    if (errors.length > 0) {
      showErrors(f.form, general, errors);
      return null;
    }
    const body = f.body();
    const base = path('tenants', tenantId, 'servers');
    submit.disabled = true;
    try {
      let result;
      if (currentMode === 'add') result = await api('POST', base, body);
      else if (currentMode === 'copy') result = await api('POST', `${base}${path(server.id)}/copy`, body);
      else result = await api('PATCH', `${base}${path(saved.id)}`, body);
      changed = true;
      return result;
    } catch (err) {
      showErrors(f.form, general, [{ field: f.fieldOf(err.field), message: err.message }]);
      return null;
    } finally {
      submit.disabled = false;
    }
  }

  /** For Get Code: save, and keep the dialog open as the saved server's edit dialog. */
  async function saveAndStay() {
    const result = await save();
    if (!result) return null;
    saved = result;
    f.setStored(result);
    if (currentMode !== 'edit') {
      currentMode = 'edit';
      dlg.setTitle(TITLES.edit);
      submit.textContent = 'Save';
    }
    return result.id;
  }

  f.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (await save()) dlg.close();
  });
  return dlg;
}

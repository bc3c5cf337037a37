/** Sign-in with an API token; the token is kept in session storage only. */
import { api, signIn } from '../lib/api.js';
import { h, replace } from '../lib/dom.js';
import { clearErrors, generalError, input, showApiError, showErrors } from '../lib/forms.js';
import { breadcrumbs } from '../lib/layout.js';

export function renderSignIn(main, { onSignedIn }) {
  breadcrumbs([['Sign in']]);
  const general = generalError();
  const note = h('p', { class: 'note', id: 'sign-in-note', role: 'status', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', novalidate: true },
    h('h1', {}, 'Sign in to Mailroom'),
    note,
    input({
      label: 'API token',
      name: 'token',
      type: 'password',
      required: true,
      autocomplete: 'current-password',
      hint: 'The administrator token (data/api-token, or MAILROOM_API_TOKEN) or a tenant token. It is kept for this browser tab only.',
    }),
    general,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    const value = form.elements.namedItem('token').value.trim();
    if (!value) {
      showErrors(form, general, [{ field: 'token', message: 'Enter the API token.' }]);
      return;
    }
    submit.disabled = true;
    try {
      await api('GET', '/tenants', undefined, value);
      signIn(value);
      onSignedIn();
    } catch (err) {
      showApiError(form, general, err.status === 401 ? { field: 'token', message: err.message } : err);
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  form.elements.namedItem('token').focus();
}

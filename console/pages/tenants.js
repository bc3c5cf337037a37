/** The tenants (business units): list and create. */
import { api } from '../lib/api.js';
import { h, listTable, when } from '../lib/dom.js';
import { openDialog } from '../lib/dialog.js';
import { clearErrors, generalError, input, showApiError, showErrors } from '../lib/forms.js';
import { breadcrumbs, failure, heading } from '../lib/layout.js';
import { go, href } from '../lib/router.js';

export async function renderTenants(main) {
  breadcrumbs([['Tenants']]);
  let tenants, scope;
  try {
    ({ tenants, scope } = await api('GET', '/tenants'));
  } catch (err) {
    heading(main, 'Tenants');
    failure(main, err);
    return;
  }
  // Only the administrator adds tenants: a tenant token is not offered what it may not do.
  heading(
    main,
    'Tenants',
    scope === 'admin'
      ? h(
          'span',
          { class: 'page-links' },
          h('a', { href: '#/audit' }, 'Audit log'),
          h('button', { type: 'button', class: 'primary', onclick: () => createTenant() }, 'Add tenant'),
        )
      : null,
  );
  if (tenants.length === 0) {
    main.append(h('p', { class: 'empty' }, 'No tenants yet. Add one to configure its e-mail servers.'));
    return;
  }
  main.append(
    listTable(
      'Tenants',
      ['Name', 'Created'],
      tenants.map((t) =>
        h('tr', {}, h('td', {}, h('a', { href: href('tenants', t.id) }, t.name)), h('td', {}, when(t.createdAt))),
      ),
    ),
  );
}

function createTenant() {
  const general = generalError();
  const form = h(
    'form',
    { novalidate: true },
    input({ label: 'Name', name: 'name', required: true, hint: 'The business unit, e.g. "Support EMEA".' }),
    general,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Add'),
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
    ),
  );
  const dlg = openDialog({ title: 'Add tenant', body: form });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, general);
    const name = form.elements.namedItem('name').value.trim();
    if (!name) return showErrors(form, general, [{ field: 'name', message: 'Enter a name.' }]);
    try {
      const tenant = await api('POST', '/tenants', { name });
      dlg.close();
      go(href('tenants', tenant.id));
    } catch (err) {
      showApiError(form, general, err);
    }
  });
}

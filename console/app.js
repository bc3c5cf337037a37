/**
 * The Mailroom web console: sign-in, tenants, e-mail servers, destinations, status, message
 * trace, held mail, audit log, retention and erasure. Plain ES
 * modules served as they are by the engine (src/api/routes/console.ts); see README "Web console".
 */
import { signOut, token, whenUnauthorized } from './lib/api.js';
import { route, show } from './lib/router.js';
import { renderAudit } from './pages/audit.js';
import { renderDestinationMessages } from './pages/destination-messages.js';
import { renderMessage } from './pages/message.js';
import { renderRetention } from './pages/retention.js';
import { renderServerStatus } from './pages/server-status.js';
import { renderSignIn } from './pages/sign-in.js';
import { renderTenant } from './pages/tenant.js';
import { renderTenants } from './pages/tenants.js';
import { renderTrace } from './pages/trace.js';

const main = document.getElementById('main');
const signOutButton = document.getElementById('sign-out');

route('/', renderTenants);
route('/tenants/:tenantId', renderTenant);
route('/tenants/:tenantId/servers/:serverId', renderServerStatus);
route('/tenants/:tenantId/destinations/:destinationId', renderDestinationMessages);
route('/tenants/:tenantId/trace', renderTrace);
route('/tenants/:tenantId/trace/:kind/:id', renderMessage);
route('/tenants/:tenantId/audit', renderAudit);
route('/tenants/:tenantId/retention', renderRetention);
route('/audit', renderAudit);

function start() {
  if (!token()) {
    signOutButton.hidden = true;
    for (const dialog of document.querySelectorAll('dialog')) dialog.close();
    renderSignIn(main, { onSignedIn: start });
    return;
  }
  signOutButton.hidden = false;
  void show(main);
}

signOutButton.addEventListener('click', () => {
  signOut();
  start();
});
whenUnauthorized(() => {
  signOut();
  start();
  const note = document.getElementById('sign-in-note');
  if (note) {
    note.textContent = 'The engine refused the API token (revoked or replaced). Sign in again.';
    note.hidden = false;
  }
});
window.addEventListener('hashchange', () => {
  if (token()) void show(main);
});
start();

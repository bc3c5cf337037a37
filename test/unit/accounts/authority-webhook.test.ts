import assert from 'node:assert/strict';
import { checkWebhookUrl } from '../../../src/accounts/destination-webhook.js';
import { checkAuthorityHost } from '../../../src/accounts/server-form.js';

const refusedNaming = (field: string) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, 'VALIDATION_FAILED');
  assert.equal((err as { field?: string }).field, field);
  return true;
};

/** Issue 24 review, finding E: an authority is scheme and host only; a webhook URL names a host and a usable port. */
describe('OAuth authority host and webhook URL shapes', () => {
  for (const ok of [
    'https://login.microsoftonline.com',
    'https://login.microsoftonline.com/',
    'https://127.0.0.1:8443',
    'https://[::1]:8443',
    'HTTPS://Login.Example.com',
  ]) {
    it(`authority ${ok} is accepted`, () => checkAuthorityHost(ok, 'imap.auth.authorityHost'));
  }
  for (const bad of [
    'https://user:pw@login.example.com',
    'https://user@login.example.com',
    'https://user:pw@login.example.com/x?y#z',
    'https://login.example.com/tenant',
    'https://login.example.com?x=1',
    'https://login.example.com#frag',
    'https://login.example.com:0',
    'https:///login.example.com',
    'http://login.example.com',
    'https://login.example.com\\evil',
  ]) {
    it(`authority ${bad} is refused, naming the field`, () =>
      assert.throws(
        () => checkAuthorityHost(bad, 'smtp.auth.authorityHost'),
        refusedNaming('smtp.auth.authorityHost'),
      ));
  }

  for (const ok of ['https://hooks.example.com/x', 'http://127.0.0.1:8080/in?a=1']) {
    it(`webhook ${ok} is accepted`, () => checkWebhookUrl(ok));
  }
  for (const bad of [
    'https:///x',
    'https:////hooks.example.com/x',
    'https://hooks.example.com:0/x',
    'https://u:p@hooks.example.com/',
  ]) {
    it(`webhook ${bad} is refused, naming webhookUrl`, () =>
      assert.throws(() => checkWebhookUrl(bad), refusedNaming('webhookUrl')));
  }
});

import assert from 'node:assert/strict';
import {
  accountPlaceOf,
  appScopes,
  deviceCodeScopes,
  oauthTarget,
  scopesFor,
} from '../../../src/auth/oauth/settings.js';
import type { EmailServerRow, OAuthSettings } from '../../../src/store/rows.js';

const settings: OAuthSettings = {
  clientId: 'c',
  directoryId: 'd',
  flow: 'device-code',
  authorityHost: 'https://login',
};

describe('OAuth 2.0 scopes of a Microsoft Graph server', () => {
  it('asks Graph for mail read-write and send (device code) or .default (client credentials)', () => {
    assert.deepEqual(deviceCodeScopes({ settings, graph: true }), [
      'https://graph.microsoft.com/Mail.ReadWrite',
      'https://graph.microsoft.com/Mail.Send',
      'offline_access',
    ]);
    assert.deepEqual(appScopes({ settings, graph: true }), ['https://graph.microsoft.com/.default']);
    assert.deepEqual(scopesFor('smtp', { settings, graph: true }), ['https://graph.microsoft.com/Mail.Send']);
    assert.deepEqual(scopesFor('imap', { settings }), ['https://outlook.office.com/IMAP.AccessAsUser.All']);
    // A national cloud's Graph: the scopes name its host.
    assert.deepEqual(appScopes({ settings: { serverUrl: 'https://graph.microsoft.us' }, graph: true }), [
      'https://graph.microsoft.us/.default',
    ]);
  });

  it('keeps a Graph sign-in apart from an IMAP one of the same mailbox, both purposes sharing it', () => {
    const row = {
      protocol: 'graph',
      imapHost: 'graph.microsoft.com',
      imapUser: 'desk@contoso.example',
      smtpHost: 'graph.microsoft.com',
      smtpUser: null,
      imapAuthMethod: 'oauth2',
      imapOAuth: settings,
      smtpAuthMode: 'imap',
    } as unknown as EmailServerRow;
    assert.equal(accountPlaceOf(row, 'imap'), accountPlaceOf(row, 'smtp'));
    assert.notEqual(accountPlaceOf(row, 'imap'), accountPlaceOf({ ...row, protocol: 'imap' }, 'imap'));
    assert.equal(oauthTarget(row, 'smtp')?.graph, true);
  });
});

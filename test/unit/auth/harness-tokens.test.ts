import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { FakeIdp } from '../../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../../src/harness/smtp-harness.js';
import { openOAuthFixture, type OAuthFixture } from './oauth-setup.js';

const USER = 'support@contoso.test';

/** The fake IMAP and SMTP servers accept exactly the tokens the fake identity provider issued and still honours. */
describe('fake identity provider tokens at the fake IMAP and SMTP servers', function () {
  this.timeout(30_000);
  let f: OAuthFixture;
  let idp: FakeIdp;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let token: string;

  beforeEach(async () => {
    f = await openOAuthFixture();
    idp = f.idp;
    imap = await startFakeImap({ users: [{ user: USER }], verifyAccessToken: idp.verifyAccessToken });
    smtp = await startSmtpHarness({ verifyAccessToken: idp.verifyAccessToken });
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    const code = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    await f.clock.nextTimer();
    idp.approve(code.userCode, USER);
    await f.clock.fireNext();
    await f.oauth.flows.settled(server.id, 'imap');
    token = (await f.oauth.accessToken(await f.row(server.id), 'smtp')).accessToken;
  });
  afterEach(async () => {
    await imap.close();
    await smtp.close();
    await f.close();
  });

  async function imapLogin(accessToken: string): Promise<void> {
    const client = new ImapFlow({
      host: imap.host,
      port: imap.port,
      secure: false,
      auth: { user: USER, accessToken },
      logger: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } finally {
      client.close();
    }
  }

  function sendMail(accessToken: string): Promise<unknown> {
    const mailer = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: false,
      auth: { type: 'OAuth2', user: USER, accessToken },
    });
    return mailer
      .sendMail({ envelope: { from: USER, to: 'customer@example.net' }, raw: 'Subject: hi\r\n\r\nhello\r\n' })
      .finally(() => mailer.close());
  }

  it('accepts a live token over XOAUTH2 and refuses it once expired', async () => {
    await imapLogin(token);
    await sendMail(token);
    assert.equal((await smtp.waitFor(1))[0]?.user, USER);

    idp.expireAccessTokens();
    await assert.rejects(
      imapLogin(token),
      (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true,
    );
    await assert.rejects(sendMail(token), (err: { responseCode?: number }) => err.responseCode === 535);
  });
});

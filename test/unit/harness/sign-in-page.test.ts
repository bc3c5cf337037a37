import assert from 'node:assert/strict';
import { Directory } from '../../../src/harness/fake-idp/directory.js';
import { SignInPage, type PageReply, type PageRequest } from '../../../src/harness/fake-idp/sign-in-page.js';
import { FakeClock } from '../../support/fake-clock.js';

const HOST = '127.0.0.1:8443';
const ORIGIN = `https://${HOST}`;
const ACCOUNTS = ['office@example.com', "o'neil<b>@example.com"];

describe('fake identity provider: the sign-in page at verificationUri', () => {
  let clock: FakeClock;
  let directory: Directory;
  let page: SignInPage;
  let ended: Array<string | undefined>;
  let reported: string[];

  beforeEach(() => {
    clock = new FakeClock();
    directory = new Directory({
      baseUrl: () => ORIGIN,
      accessTokenLifetimeSeconds: 3600,
      deviceCodeLifetimeSeconds: 900,
      pollIntervalSeconds: 5,
      now: () => clock.now(),
    });
    ended = [];
    reported = [];
    page = new SignInPage({
      directory,
      accounts: ACCOUNTS,
      endSessions: (user) => void ended.push(user),
      report: (line) => reported.push(line),
    });
  });

  /** A device code as msal-node asks for one; returns the user code and device code. */
  function newCode(): { userCode: string; deviceCode: string } {
    const reply = directory.deviceCode('contoso', new URLSearchParams({ client_id: 'app-1', scope: 'offline_access' }));
    return { userCode: reply.body.user_code as string, deviceCode: reply.body.device_code as string };
  }

  function poll(deviceCode: string): Record<string, unknown> {
    return directory.token(
      'contoso',
      new URLSearchParams({ grant_type: 'device_code', client_id: 'app-1', device_code: deviceCode }),
    ).body;
  }

  function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<PageReply> {
    const req: PageRequest = {
      method: 'POST',
      path,
      form: new URLSearchParams(form),
      headers: { host: HOST, accept: 'text/html', origin: ORIGIN, ...headers },
    };
    return page.answer(req);
  }

  it('serves a form without scripts under a strict policy, the accounts escaped', async () => {
    assert.equal(page.handles('/devicelogin'), true);
    assert.equal(page.handles('/devicelogin/revoke'), true);
    assert.equal(page.handles('/devicelogin/other'), false);
    newCode();
    const reply = await page.answer({ method: 'GET', path: '/devicelogin', form: new URLSearchParams(), headers: {} });
    assert.equal(reply.status, 200);
    const csp = reply.headers['content-security-policy'] ?? '';
    assert.match(csp, /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; form-action 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(reply.headers['x-frame-options'], 'DENY');
    assert.equal(reply.headers['cache-control'], 'no-store');
    assert.doesNotMatch(reply.body, /<script|<link|<img|<iframe/i);
    assert.match(reply.body, /value="o&#39;neil&lt;b&gt;@example\.com"/);
    assert.doesNotMatch(reply.body, /<b>@/);
    assert.match(reply.body, /1 code is waiting for a person/);
    assert.doesNotMatch(reply.body, new RegExp(directory.pendingCodes()[0]?.userCode ?? '-'), 'codes are not shown');
  });

  it('signs the person in with the code as typed: the next poll gets tokens for the account picked', async () => {
    const { userCode, deviceCode } = newCode();
    assert.equal(poll(deviceCode).error, 'authorization_pending');
    const typed = `${userCode.slice(0, 3).toLowerCase()}-${userCode.slice(3)}`;
    const reply = await post('/devicelogin', { code: typed, account: 'OFFICE@example.com', action: 'sign-in' });
    assert.equal(reply.status, 200, reply.body);
    assert.match(reply.body, /You have signed in to app app-1 as office@example\.com/);
    const tokens = poll(deviceCode);
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(directory.allows('office@example.com', tokens.access_token as string), true);
    assert.deepEqual(directory.signedIn(), [{ user: 'office@example.com', clientIds: ['app-1'] }]);
    assert.match(reported.join('\n'), /office@example\.com signed in to app app-1/);
    const again = await post('/devicelogin', { code: userCode, account: ACCOUNTS[0] as string });
    assert.equal(again.status, 400, 'a code is used once');
  });

  it('refuses what it cannot do, naming the field (JSON to curl, HTML to a browser)', async () => {
    const { userCode, deviceCode } = newCode();
    const json = { accept: '*/*' };
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ code: '', account: 'office@example.com' }, 'code', /Enter the code/],
      [{ code: 'ZZZZZZZZZ', account: 'office@example.com' }, 'code', /not known/],
      [{ code: userCode, account: 'mallory@example.com' }, 'account', /Pick one of: office@example\.com/],
      [{ code: userCode, account: 'x'.repeat(400) }, 'account', /too long/],
    ];
    for (const [form, field, message] of cases) {
      const reply = await post('/devicelogin', form, json);
      assert.equal(reply.status, 400, JSON.stringify(form));
      assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
      const body = JSON.parse(reply.body) as { error: { field: string; message: string } };
      assert.equal(body.error.field, field);
      assert.match(body.error.message, message);
    }
    const html = await post('/devicelogin', { code: 'ZZZZZZZZZ', account: 'office@example.com' });
    assert.match(html.headers['content-type'] ?? '', /^text\/html/);
    assert.match(html.body, /<p class="error" role="status">That code is not known/);
    // Another site's form (a person's browser sends its Origin) approves nothing.
    const forgeries: Array<Record<string, string>> = [
      { origin: 'https://attacker.example' },
      { origin: ORIGIN, 'sec-fetch-site': 'cross-site' },
      // Another service on 127.0.0.1 (another port) is the same site, not the same origin.
      { origin: 'https://127.0.0.1:9999', 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of forgeries) {
      const forged = await post('/devicelogin', { code: userCode, account: 'office@example.com' }, headers);
      assert.equal(forged.status, 403);
    }
    assert.equal(poll(deviceCode).error, 'authorization_pending');
    // The page's own form as a browser posts it (Origin null where a referrer policy hides it).
    const own = await post(
      '/devicelogin',
      { code: userCode, account: 'office@example.com' },
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(own.status, 200, own.body);
    const get = await page.answer({ method: 'PUT', path: '/devicelogin', form: new URLSearchParams(), headers: {} });
    assert.equal(get.status, 405);
  });

  it('cancels a sign-in (authorization_declined) and refuses an expired code', async () => {
    const first = newCode();
    const cancelled = await post('/devicelogin', {
      code: first.userCode,
      account: 'office@example.com',
      action: 'cancel',
    });
    assert.equal(cancelled.status, 200);
    assert.equal(poll(first.deviceCode).error, 'authorization_declined');

    const second = newCode();
    clock.advance(900_000);
    const late = await post('/devicelogin', { code: second.userCode, account: 'office@example.com' });
    assert.equal(late.status, 400);
    assert.match(late.body, /That code has expired/);
    assert.equal(poll(second.deviceCode).error, 'expired_token');
  });

  it('expires a code, revokes a grant and ends access tokens on request, ending the mail connections', async () => {
    const pending = newCode();
    const expired = await post('/devicelogin/expire', { code: pending.userCode.toLowerCase() });
    assert.equal(expired.status, 200);
    assert.equal(poll(pending.deviceCode).error, 'expired_token');

    const { userCode, deviceCode } = newCode();
    await post('/devicelogin', { code: userCode, account: 'office@example.com' });
    const tokens = poll(deviceCode);
    const refresh = (): Record<string, unknown> =>
      directory.token(
        'contoso',
        new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: 'app-1',
          refresh_token: tokens.refresh_token as string,
        }),
      ).body;

    const endedTokens = await post('/devicelogin/expire-tokens', {}, { accept: 'application/json' });
    assert.deepEqual(JSON.parse(endedTokens.body).ok, true);
    assert.equal(directory.allows('office@example.com', tokens.access_token as string), false);
    assert.deepEqual(ended, [undefined]);

    const revoked = await post(
      '/devicelogin/revoke',
      { account: 'Office@Example.com' },
      { accept: 'application/json' },
    );
    assert.equal(revoked.status, 200);
    assert.match(JSON.parse(revoked.body).message, /Revoked office@example\.com's sign-in/);
    assert.deepEqual(ended, [undefined, 'office@example.com']);
    assert.equal(refresh().error, 'invalid_grant');
    assert.deepEqual(directory.signedIn(), []);
    const none = await post('/devicelogin/revoke', {}, { accept: 'application/json' });
    assert.equal(JSON.parse(none.body).error.field, 'account');
  });

  it('takes any typed e-mail address when it has no accounts', async () => {
    const open = new SignInPage({ directory, accounts: [] });
    const get = await open.answer({ method: 'GET', path: '/devicelogin', form: new URLSearchParams(), headers: {} });
    assert.match(get.body, /<input type="email" name="account"/);
    const { userCode, deviceCode } = newCode();
    const headers = { host: HOST, accept: '*/*' };
    const bad = await open.answer({
      method: 'POST',
      path: '/devicelogin',
      form: new URLSearchParams({ code: userCode, account: 'not an address' }),
      headers,
    });
    assert.equal(JSON.parse(bad.body).error.field, 'account');
    await open.answer({
      method: 'POST',
      path: '/devicelogin',
      form: new URLSearchParams({ code: userCode, account: 'anyone@contoso.test' }),
      headers,
    });
    assert.equal(directory.allows('anyone@contoso.test', poll(deviceCode).access_token as string), true);
  });
});

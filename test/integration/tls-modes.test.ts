import assert from 'node:assert/strict';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 30, item 3: each side's encryption chosen by name (`tls`), checked with "Test connection"
 * against servers that offer STARTTLS with a certificate the engine does not trust (Dovecot, the
 * smtp-server harness) and servers that offer no TLS at all (the fake IMAP server, the plain
 * harness). The STARTTLS servers' certificate comes from a CA nobody names here: a mode that
 * encrypts fails on it, and only `none` gets through, in plain text.
 */
describe('TLS mode per side (tls: implicit | starttls-required | starttls-when-offered | none)', function () {
  this.timeout(120_000);
  const certificates = makeTestCertificates();
  let dovecot: DovecotInstance;
  let plainImap: FakeImapServer;
  let starttlsSmtp: SmtpHarness;
  let plainSmtp: SmtpHarness;
  let h: ApiHarness;
  let tenantId: string;
  let n = 0;

  before(async function () {
    skipWithout(this, dovecotMissing());
    const users = Array.from({ length: 8 }, (_, i) => ({ user: `box${i}@example.com`, password: 'pw' }));
    dovecot = await startDovecot({ users, tls: { cert: certificates.cert, key: certificates.key } });
    plainImap = await startFakeImap({ users });
    starttlsSmtp = await startSmtpHarness({ tls: { key: certificates.key, cert: certificates.cert } });
    plainSmtp = await startSmtpHarness();
    h = await openApiHarness('pglite');
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'TLS' })).body.id;
  });
  after(async () => {
    await h?.close();
    await dovecot?.close();
    await plainImap?.close();
    await starttlsSmtp?.close();
    await plainSmtp?.close();
  });

  async function serverWith(imap: Obj, smtp: Obj): Promise<{ status: number; body: Obj; raw: string }> {
    n += 1;
    return h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: `Server ${n}`,
      enabled: false,
      imap: { host: '127.0.0.1', user: `box${n}@example.com`, auth: { method: 'password', password: 'pw' }, ...imap },
      smtp: { host: '127.0.0.1', auth: { mode: 'none' }, ...smtp },
    });
  }

  async function testConnection(imap: Obj, smtp: Obj): Promise<Obj> {
    const created = await serverWith(imap, smtp);
    assert.equal(created.status, 201, created.raw);
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${created.body.id}/test`, {});
    assert.equal(res.status, 200, res.raw);
    return { ...res.body, server: created.body };
  }

  it('starttls-required refuses a server that offers no STARTTLS, before any login', async () => {
    const res = await testConnection(
      { port: plainImap.port, tls: 'starttls-required' },
      { port: plainSmtp.port, tls: 'starttls-required' },
    );
    assert.equal(res.server.imap.tls, 'starttls-required');
    assert.equal(res.server.imap.secure, false);
    assert.equal(res.server.imap.port, plainImap.port);
    assert.equal(res.imap.ok, false, JSON.stringify(res.imap));
    assert.match(res.imap.detail, /STARTTLS/);
    assert.equal(res.smtp.ok, false, JSON.stringify(res.smtp));
    assert.match(res.smtp.detail, /STARTTLS|TLS/);
    assert.deepEqual(res.server.warnings, []);
  });

  it('starttls-when-offered (what secure: false always did) goes on in plain text where nothing is offered', async () => {
    const res = await testConnection({ port: plainImap.port, secure: false }, { port: plainSmtp.port });
    assert.equal(res.server.imap.tls, 'starttls-when-offered', 'secure: false is named plainly');
    assert.equal(res.server.smtp.tls, 'starttls-when-offered', 'the default away from port 465');
    assert.equal(res.imap.ok, true, JSON.stringify(res.imap));
    assert.equal(res.smtp.ok, true, JSON.stringify(res.smtp));
  });

  it('starttls-when-offered never downgrades: an offered STARTTLS whose certificate fails is a failure', async () => {
    const res = await testConnection(
      { port: dovecot.port, tls: 'starttls-when-offered' },
      { port: starttlsSmtp.port, tls: 'starttls-when-offered' },
    );
    assert.equal(res.imap.ok, false, JSON.stringify(res.imap));
    assert.match(res.imap.detail, /certificate is not trusted.*'imap\.caFile'/);
    assert.equal(res.smtp.ok, false, JSON.stringify(res.smtp));
    assert.match(res.smtp.detail, /certificate is not trusted.*'smtp\.caFile'/);
  });

  it('none is plain text even where STARTTLS is offered, only by name, and always warned about', async () => {
    const res = await testConnection({ port: dovecot.port, tls: 'none' }, { port: starttlsSmtp.port, tls: 'none' });
    assert.equal(res.imap.ok, true, JSON.stringify(res.imap));
    assert.equal(res.smtp.ok, true, JSON.stringify(res.smtp));
    const login = await eventually(async () =>
      (await dovecot.readLog()).split('\n').find((l) => l.includes(`Login: user=<box${n}@example.com>`)),
    );
    assert.doesNotMatch(login, /\bTLS\b/, `a plain-text login: ${login}`);
    assert.equal(res.server.imap.tls, 'none');
    assert.equal(res.server.smtp.tls, 'none');
    assert.equal(res.server.warnings.length, 2, JSON.stringify(res.server.warnings));
    assert.match(res.server.warnings.join('\n'), /'imap\.tls' is 'none'.*unencrypted/);

    const status = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${res.server.id}/status`);
    assert.deepEqual(status.body.tls, { imap: 'none', smtp: 'none' });
    assert.deepEqual(status.body.warnings, res.server.warnings);

    // Back to an encrypted mode: the warnings go. A new TLS setting asks for the password again
    // (a stored secret only goes where, and how, it was entered for).
    const path = `/api/v1/tenants/${tenantId}/servers/${res.server.id}`;
    const withoutPassword = await h.call<Obj>('PATCH', path, { imap: { secure: true } });
    assert.equal(withoutPassword.status, 400, withoutPassword.raw);
    assert.equal(withoutPassword.body.error.field, 'imap.auth.password');
    const patched = await h.call<Obj>('PATCH', path, {
      smtp: { tls: 'starttls-required' },
      imap: { secure: true, auth: { method: 'password', password: 'pw' } },
    });
    assert.equal(patched.status, 200, patched.raw);
    assert.equal(patched.body.imap.tls, 'implicit');
    assert.equal(patched.body.smtp.tls, 'starttls-required');
    assert.deepEqual(patched.body.warnings, []);
  });

  it('refuses a tls and a secure that disagree, naming the field', async () => {
    const res = await serverWith({ port: 143, tls: 'starttls-required', secure: true }, { port: 25 });
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.error.field, 'imap.tls');
    const bad = await serverWith({ port: 143 }, { port: 25, tls: 'ssl' });
    assert.equal(bad.status, 400, bad.raw);
    assert.match(bad.raw, /smtp\/tls|smtp\.tls/);
  });
});

import assert from 'node:assert/strict';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/server.js';
import { ImapSession } from '../../src/inbound/imap-session.js';
import { quietLogger } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

/**
 * "Use SSL" on IMAP: TLS from the first byte, or, on a STARTTLS port (143, as Dovecot offers it
 * here), STARTTLS, required; never plain text.
 */
describe('IMAP "Use SSL" on a STARTTLS port (Dovecot)', function () {
  const certificates = makeTestCertificates();
  let dovecot: DovecotInstance;
  let plain: FakeImapServer;
  const sessions: ImapSession[] = [];

  before(async function () {
    skipWithout(this, dovecotMissing());
    dovecot = await startDovecot({
      users: [{ user: 'box@example.com', password: 'pw' }],
      tls: { cert: certificates.cert, key: certificates.key },
    });
    plain = await startFakeImap({ users: [{ user: 'box@example.com', password: 'pw' }] });
  });
  after(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    await dovecot?.close();
    await plain?.close();
  });

  const connect = (port: number): Promise<ImapSession> =>
    ImapSession.connect({
      host: '127.0.0.1',
      port,
      tls: 'implicit',
      login: { user: 'box@example.com', pass: 'pw' },
      ca: certificates.ca,
      logger: quietLogger,
      connectionTimeoutMs: 5_000,
      greetingTimeoutMs: 5_000,
    }).then((session) => {
      sessions.push(session);
      return session;
    });

  it('logs in over STARTTLS when the server answers TLS in plain text', async () => {
    const session = await connect(dovecot.port);
    assert.ok(session.usable);
    // Dovecot's login line says whether the session was encrypted.
    const login = await eventually(async () =>
      (await dovecot.readLog()).split('\n').find((l) => l.includes('Login: user=<box@example.com>')),
    );
    assert.match(login, /\bTLS\b/, login);
  });

  it('never logs in in plain text: a server without STARTTLS is refused', async () => {
    await assert.rejects(connect(plain.port), (err: Error) => {
      assert.match(err.message, /STARTTLS|TLS/i, err.message);
      return true;
    });
  });
});

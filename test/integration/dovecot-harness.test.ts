import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

const USER = { user: 'agent', password: 'secret' };
/** A refused login must come back faster than Dovecot's auth penalty (2-15 s), in milliseconds. */
const QUICK_REFUSAL_MS = 2_000;

function client(dovecot: DovecotInstance, pass: string): ImapFlow {
  return new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: false,
    auth: { user: USER.user, pass },
    logger: false,
  });
}

function message(n: number): Buffer {
  return Buffer.from(
    [
      'From: customer@example.com',
      'To: agent@example.com',
      `Subject: message ${n}`,
      `Message-ID: <dovecot-harness-${n}@example.com>`,
      '',
      `Body of message ${n}, with a line break`,
      'and a second line.',
      '',
    ].join('\r\n'),
  );
}

describe('Dovecot test server', function () {
  this.timeout(30_000);
  let dovecot: DovecotInstance | undefined;

  before(async function () {
    skipWithout(this, dovecotMissing());
    dovecot = await startDovecot({ users: [USER] });
  });

  after(async function () {
    await dovecot?.close();
  });

  it('logs in, appends three messages and fetches them back by UID with full sources', async function () {
    assert.ok(dovecot);
    const imap = client(dovecot, USER.password);
    await imap.connect();
    try {
      const sources = [1, 2, 3].map(message);
      const uids: number[] = [];
      for (const source of sources) {
        const appended = await imap.append('INBOX', source, ['\\Seen']);
        assert.ok(appended && appended.uid, 'APPENDUID expected (Dovecot has UIDPLUS)');
        uids.push(appended.uid);
      }
      const lock = await imap.getMailboxLock('INBOX');
      try {
        const fetched = await imap.fetchAll(uids.join(','), { uid: true, source: true, flags: true }, { uid: true });
        assert.deepEqual(
          fetched.map((m) => m.uid),
          uids,
        );
        fetched.forEach((m, i) => {
          assert.deepEqual(m.source, sources[i]);
          assert.ok(m.flags?.has('\\Seen'));
        });
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout();
    }
  });

  it('refuses a wrong password quickly (auth penalty disabled)', async function () {
    assert.ok(dovecot);
    for (let attempt = 0; attempt < 2; attempt++) {
      const started = Date.now();
      const imap = client(dovecot, 'wrong');
      await assert.rejects(imap.connect(), (err: Error & { authenticationFailed?: boolean }) => {
        assert.equal(err.authenticationFailed, true);
        return true;
      });
      imap.close();
      const elapsed = Date.now() - started;
      assert.ok(elapsed < QUICK_REFUSAL_MS, `attempt ${attempt + 1} took ${elapsed} ms`);
    }
  });

  it('accepts an account added while running', async function () {
    assert.ok(dovecot);
    await dovecot.addUser({ user: 'late', password: 'joiner' });
    const imap = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: 'late', pass: 'joiner' },
      logger: false,
    });
    await imap.connect();
    const status = await imap.status('INBOX', { messages: true });
    assert.equal(status && status.messages, 0);
    await imap.logout();
  });
});

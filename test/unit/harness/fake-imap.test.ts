import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { startFakeImap, type FakeImapOptions, type FakeImapServer } from '../../../src/harness/fake-imap/index.js';
import { parseCommand } from '../../../src/harness/fake-imap/parser.js';
import { formatSequenceSet, inSequenceSet, parseSequenceSet } from '../../../src/harness/fake-imap/sequence-set.js';

const USER = 'agent@example.com';
const PASSWORD = 'secret';
const TOKEN = 'ya29.valid-token';

/** The fields imapflow puts on a failed command or login. */
interface ImapError extends Error {
  authenticationFailed?: boolean;
  serverResponseCode?: string;
  responseStatus?: string;
  code?: string;
}

function message(n: number): Buffer {
  return Buffer.from(
    [
      `From: "Customer ${n}" <customer${n}@example.com>`,
      `To: ${USER}`,
      `Subject: message ${n}`,
      `Message-ID: <fake-imap-${n}@example.com>`,
      '',
      `Body of message ${n}`,
      'Grüße',
      '',
    ].join('\r\n'),
  );
}

/** A bare socket to the server, for what imapflow never sends (synchronising literals). */
class RawClient {
  private readonly lines: string[] = [];
  private waiting: (() => void) | undefined;
  private buffered = '';

  constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      const parts = this.buffered.split('\r\n');
      this.buffered = parts.pop() ?? '';
      this.lines.push(...parts);
      this.waiting?.();
    });
  }

  /** Resolves with the first unread line matching `pattern`, dropping the lines before it. */
  async line(pattern: RegExp): Promise<string> {
    for (;;) {
      const index = this.lines.findIndex((line) => pattern.test(line));
      if (index >= 0) {
        return this.lines.splice(0, index + 1)[index] ?? '';
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<ImapError> {
  try {
    await promise;
  } catch (err) {
    return err as ImapError;
  }
  assert.fail('expected a rejection');
}

describe('fake IMAP server', function () {
  let server: FakeImapServer;
  /** Emits 'line' with every protocol line the server sees or sends. */
  let traffic: EventEmitter;
  let clients: ImapFlow[];
  /** The client lines the server received, credentials hidden. */
  let received: string[];

  async function start(options: FakeImapOptions = {}): Promise<void> {
    await server?.close();
    traffic = new EventEmitter();
    received = [];
    server = await startFakeImap({
      users: [{ user: USER, password: PASSWORD, accessTokens: [TOKEN] }],
      trace: (entry) => {
        if (entry.direction === 'client') {
          received.push(entry.text);
        }
        traffic.emit('line', entry);
      },
      ...options,
    });
  }

  /** Resolves when the server writes a line matching `pattern`. */
  function serverSends(pattern: RegExp): Promise<void> {
    return new Promise((resolve) => {
      const listener = (entry: { direction: string; text: string }) => {
        if (entry.direction === 'server' && pattern.test(entry.text)) {
          traffic.off('line', listener);
          resolve();
        }
      };
      traffic.on('line', listener);
    });
  }

  function client(options: Partial<ImapFlowOptions> = {}): ImapFlow {
    const imap = new ImapFlow({
      host: server.host,
      port: server.port,
      secure: false,
      auth: { user: USER, pass: PASSWORD },
      logger: false,
      disableAutoIdle: true,
      ...options,
    });
    // a dropped connection is reported as an error event as well as a rejected command
    imap.on('error', () => undefined);
    clients.push(imap);
    return imap;
  }

  async function connected(options: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
    const imap = client(options);
    await imap.connect();
    return imap;
  }

  beforeEach(async function () {
    clients = [];
    await start();
  });

  afterEach(async function () {
    for (const imap of clients) {
      if (imap.usable) {
        await imap.logout();
      } else {
        imap.close();
      }
    }
    await server.close();
    assert.equal(server.connections, 0);
  });

  describe('authentication', function () {
    it('accepts the password through AUTHENTICATE PLAIN and through LOGIN', async function () {
      const plain = await connected();
      assert.equal(plain.authenticated, true);
      const login = await connected({ auth: { user: USER, pass: PASSWORD, loginMethod: 'LOGIN' } });
      assert.equal(login.authenticated, true);
      assert.deepEqual(
        received.filter((line) => /^\S+ (LOGIN|AUTHENTICATE) /.test(line)).map((line) => line.split(' ')[1]),
        ['AUTHENTICATE', 'LOGIN'],
      );
      assert.ok(received.some((line) => / AUTHENTICATE PLAIN /.test(line)));
    });

    it('accepts an OAuth access token through XOAUTH2, with and without SASL-IR', async function () {
      const withInitialResponse = await connected({ auth: { user: USER, accessToken: TOKEN } });
      assert.equal(withInitialResponse.authenticated, true);
      assert.ok(received.some((line) => / AUTHENTICATE XOAUTH2 /.test(line)));

      await start({ saslIr: false });
      const withContinuation = await connected({ auth: { user: USER, accessToken: TOKEN } });
      assert.equal(withContinuation.capabilities.has('SASL-IR'), false);
      assert.equal(withContinuation.authenticated, true);
      assert.ok(received.some((line) => / AUTHENTICATE XOAUTH2 /.test(line)));
    });

    it('refuses a wrong password and a wrong token as AUTHENTICATIONFAILED', async function () {
      const wrongPassword = await rejection(client({ auth: { user: USER, pass: 'wrong' } }).connect());
      assert.equal(wrongPassword.authenticationFailed, true);
      assert.equal(wrongPassword.serverResponseCode, 'AUTHENTICATIONFAILED');

      const wrongLogin = await rejection(
        client({ auth: { user: USER, pass: 'wrong', loginMethod: 'LOGIN' } }).connect(),
      );
      assert.equal(wrongLogin.authenticationFailed, true);

      const wrongToken = await rejection(client({ auth: { user: USER, accessToken: 'expired' } }).connect());
      assert.equal(wrongToken.authenticationFailed, true);
      assert.equal(wrongToken.serverResponseCode, 'AUTHENTICATIONFAILED');
    });
  });

  describe('mailboxes and messages', function () {
    it('lists the mailboxes and opens INBOX with its UIDVALIDITY and UIDNEXT', async function () {
      server.createMailbox(USER, 'Sent', { specialUse: '\\Sent' });
      server.append(USER, 'INBOX', message(1));
      const imap = await connected();

      const listed = await imap.list();
      assert.deepEqual(listed.map((entry) => entry.path).sort(), ['INBOX', 'Sent']);
      assert.equal(listed.find((entry) => entry.path === 'Sent')?.specialUse, '\\Sent');

      const mailbox = await imap.mailboxOpen('INBOX');
      const info = server.mailbox(USER, 'INBOX');
      assert.equal(mailbox.exists, 1);
      assert.equal(mailbox.uidValidity, BigInt(info.uidValidity));
      assert.equal(mailbox.uidNext, 2);
      assert.equal(mailbox.readOnly, false);

      const status = await imap.status('INBOX', { messages: true, unseen: true, uidNext: true });
      assert.deepEqual(status, { path: 'INBOX', messages: 1, unseen: 1, uidNext: 2 });
    });

    it('stores appended messages and fetches their full sources by UID range', async function () {
      const imap = await connected();
      const date = new Date('2024-03-05T09:04:01.000Z');
      const first = await imap.append('INBOX', message(1), ['\\Flagged'], date);
      const second = server.append(USER, 'INBOX', message(2));
      const third = await imap.append('INBOX', message(3));
      assert.ok(first && third);
      assert.deepEqual([first.uid, second.uid, third.uid], [1, 2, 3]);
      assert.equal(first.uidValidity, BigInt(second.uidValidity));

      const lock = await imap.getMailboxLock('INBOX');
      try {
        const all = await imap.fetchAll(
          '1:*',
          { uid: true, source: true, flags: true, internalDate: true },
          { uid: true },
        );
        assert.deepEqual(
          all.map((row) => row.uid),
          [1, 2, 3],
        );
        all.forEach((row, index) => assert.deepEqual(row.source, message(index + 1)));
        assert.deepEqual([...(all[0]?.flags ?? [])], ['\\Flagged']);
        assert.deepEqual(all[0]?.internalDate, date);

        const newer: number[] = [];
        for await (const row of imap.fetch(`${second.uid}:*`, { uid: true, source: true }, { uid: true })) {
          assert.deepEqual(row.source, message(row.uid));
          newer.push(row.uid);
        }
        assert.deepEqual(newer, [2, 3]);

        const last = await imap.fetchOne('*', { uid: true, flags: true });
        assert.ok(last);
        assert.deepEqual([last.seq, last.uid], [3, 3]);

        const headed = await imap.fetchOne('3', { headers: true, envelope: true, size: true }, { uid: true });
        assert.ok(headed);
        assert.match(headed.headers?.toString() ?? '', /^Subject: message 3\r$/m);
        assert.equal(headed.envelope?.subject, 'message 3');
        assert.deepEqual(headed.envelope?.from, [{ name: 'Customer 3', address: 'customer3@example.com' }]);
        assert.equal(headed.size, message(3).length);
      } finally {
        lock.release();
      }
      // BODY.PEEK does not mark messages as read
      assert.ok(server.messages(USER, 'INBOX').every((stored) => !stored.flags.includes('\\Seen')));
    });

    it('adds flags, moves and deletes messages by UID', async function () {
      server.createMailbox(USER, 'Done');
      for (const n of [1, 2, 3]) {
        server.append(USER, 'INBOX', message(n));
      }
      const imap = await connected();
      const lock = await imap.getMailboxLock('INBOX');
      try {
        assert.equal(await imap.messageFlagsAdd('1', ['\\Seen'], { uid: true }), true);
        assert.deepEqual(await imap.search({ seen: false }, { uid: true }), [2, 3]);
        assert.deepEqual(await imap.search({ all: true }, { uid: true }), [1, 2, 3]);

        const moved = await imap.messageMove('1', 'Done', { uid: true });
        assert.ok(moved);
        assert.deepEqual([...(moved.uidMap ?? [])], [[1, 1]]);

        assert.equal(await imap.messageDelete('3', { uid: true }), true);
        assert.equal(imap.mailbox && imap.mailbox.exists, 1);
      } finally {
        lock.release();
      }
      assert.deepEqual(
        server.messages(USER, 'INBOX').map((stored) => stored.uid),
        [2],
      );
      const done = server.messages(USER, 'Done');
      assert.deepEqual(
        done.map((stored) => [stored.uid, stored.flags]),
        [[1, ['\\Seen']]],
      );
      assert.deepEqual(done[0]?.raw, message(1));
    });

    it('tells an idling client at once about messages appended elsewhere', async function () {
      const watcher = await connected();
      await watcher.mailboxOpen('INBOX');
      const idling = serverSends(/^\+ idling$/);
      const idle = watcher.idle();
      await idling;

      const fromClient = once(watcher, 'exists');
      const writer = await connected();
      await writer.append('INBOX', message(1));
      const [first] = (await fromClient) as [{ count: number; prevCount: number }];
      assert.deepEqual([first.prevCount, first.count], [0, 1]);

      const fromApi = once(watcher, 'exists');
      server.append(USER, 'INBOX', message(2));
      const [second] = (await fromApi) as [{ count: number }];
      assert.equal(second.count, 2);

      await watcher.noop();
      await idle;
    });

    it('reports a new UIDVALIDITY and renumbered messages when the mailbox is selected again', async function () {
      server.append(USER, 'INBOX', message(1));
      server.append(USER, 'INBOX', message(2));
      const imap = await connected();
      const before = await imap.mailboxOpen('INBOX');
      await imap.messageDelete('1', { uid: true });
      server.append(USER, 'INBOX', message(3));

      const uidValidity = server.resetUidValidity(USER, 'INBOX');
      await imap.mailboxClose();
      const after = await imap.mailboxOpen('INBOX');
      assert.equal(after.uidValidity, BigInt(uidValidity));
      assert.ok(after.uidValidity > before.uidValidity);
      assert.equal(after.uidNext, 3);
      const rows = await imap.fetchAll('1:*', { uid: true, source: true }, { uid: true });
      assert.deepEqual(
        rows.map((row) => [row.uid, row.source?.toString()]),
        [
          [1, message(2).toString()],
          [2, message(3).toString()],
        ],
      );
    });
  });

  describe('faults', function () {
    it('drops the connection when a command arrives, once or always', async function () {
      server.append(USER, 'INBOX', message(1));
      server.faults.dropConnection('FETCH');
      const imap = await connected();
      await imap.mailboxOpen('INBOX');
      const closed = once(imap, 'close');
      await rejection(imap.fetchAll('1:*', { uid: true }, { uid: true }));
      await closed;

      const again = await connected();
      await again.mailboxOpen('INBOX');
      assert.equal((await again.fetchAll('1:*', { uid: true }, { uid: true })).length, 1);

      server.faults.dropConnection('LOGIN', { times: Infinity });
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await rejection(client({ auth: { user: USER, pass: PASSWORD, loginMethod: 'LOGIN' } }).connect());
        assert.notEqual(error.authenticationFailed, true);
      }
    });

    it('delays the answer to a command', async function () {
      const imap = await connected();
      server.faults.delay('NOOP', 150);
      const started = Date.now();
      await imap.noop();
      assert.ok(Date.now() - started >= 140, 'NOOP was answered without the delay');
    });

    it('answers a command with NO or BAD', async function () {
      server.append(USER, 'INBOX', message(1));
      server.faults.reply('SELECT', 'NO', { code: 'UNAVAILABLE', text: 'Try later' });
      const imap = await connected();
      const refused = await rejection(imap.mailboxOpen('INBOX'));
      assert.equal(refused.serverResponseCode, 'UNAVAILABLE');
      await imap.mailboxOpen('INBOX');

      server.faults.reply('UID STORE', 'BAD');
      assert.equal(await imap.messageFlagsAdd('1', ['\\Seen'], { uid: true }), false);
      assert.deepEqual(server.messages(USER, 'INBOX')[0]?.flags, []);
      assert.equal(await imap.messageFlagsAdd('1', ['\\Seen'], { uid: true }), true);
    });

    it('refuses every login while asked to', async function () {
      server.faults.refuseLogins();
      for (const auth of [
        { user: USER, pass: PASSWORD },
        { user: USER, accessToken: TOKEN },
      ]) {
        const error = await rejection(client({ auth }).connect());
        assert.equal(error.authenticationFailed, true);
        assert.equal(error.serverResponseCode, 'AUTHENTICATIONFAILED');
      }
      server.faults.refuseLogins(false);
      await connected();
    });

    it('leaves out IDLE so that clients fall back to polling with NOOP', async function () {
      await start({ idle: false });
      const imap = await connected({ maxIdleTime: 50 });
      assert.equal(imap.capabilities.has('IDLE'), false);
      await imap.mailboxOpen('INBOX');
      const polled = serverSends(/^\S+ OK NOOP completed$/);
      const idle = imap.idle();
      await polled;

      const exists = once(imap, 'exists');
      server.append(USER, 'INBOX', message(1));
      const [update] = (await exists) as [{ count: number }];
      assert.equal(update.count, 1);
      await imap.noop();
      await idle;
    });
  });

  it('behaves like Gmail when asked: X-GM-EXT-1, one X-GM-MSGID in every label, All Mail listed as \\All', async function () {
    await start({ gmail: true });
    server.createMailbox(USER, 'Support');
    server.append(USER, 'INBOX', message(1), { alsoIn: ['Support'] });
    server.append(USER, 'Support', message(2));
    const imap = await connected();
    assert.ok(imap.capabilities.has('X-GM-EXT-1'));
    const all = (await imap.list()).find((box) => box.specialUse === '\\All');
    assert.equal(all?.path, '[Gmail]/All Mail');
    const ids = async (path: string): Promise<string[]> => {
      await imap.mailboxOpen(path);
      const found: string[] = [];
      for await (const m of imap.fetch('1:*', { uid: true, threadId: true })) found.push(`${m.emailId}/${m.threadId}`);
      return found;
    };
    const [inbox, support, allMail] = [await ids('INBOX'), await ids('Support'), await ids('[Gmail]/All Mail')];
    assert.equal(inbox.length, 1);
    assert.match(inbox[0] as string, /^\d{19}\/\d{19}$/);
    assert.equal(support[0], inbox[0], 'the same message in INBOX and its label');
    assert.notEqual(support[1], inbox[0]);
    assert.deepEqual([...allMail].sort(), [...support].sort(), 'every message is in All Mail, once');
    // A copy to another label is the same message.
    await imap.mailboxOpen('INBOX');
    await imap.messageCopy('1', 'Support');
    assert.equal((await ids('Support'))[2], inbox[0]);
    assert.equal((await ids('[Gmail]/All Mail')).length, 2);
    // Without Gmail mode, its items are unknown.
    await start();
    const plain = await connected();
    assert.ok(!plain.capabilities.has('X-GM-EXT-1'));
  });

  it('accepts synchronising literals sent in pieces', async function () {
    const socket = net.connect(server.port, server.host);
    const raw = new RawClient(socket);
    try {
      await raw.line(/^\* OK /);
      socket.write(`a LOGIN {${Buffer.byteLength(USER)}}\r\n`);
      await raw.line(/^\+ /);
      socket.write(`${USER} "${PASSWORD}"\r\n`);
      await raw.line(/^a OK /);

      const body = message(1);
      socket.write(`b APPEND INBOX (\\Seen) {${body.length}}\r\n`);
      await raw.line(/^\+ /);
      socket.write(body.subarray(0, 10));
      socket.write(Buffer.concat([body.subarray(10), Buffer.from('\r\n')]));
      const uidValidity = server.mailbox(USER, 'INBOX').uidValidity;
      assert.equal(await raw.line(/^b /), `b OK [APPENDUID ${uidValidity} 1] APPEND completed`);
      assert.deepEqual(server.messages(USER, 'INBOX')[0]?.raw, body);
      assert.deepEqual(server.messages(USER, 'INBOX')[0]?.flags, ['\\Seen']);

      socket.write('c FROB\r\n');
      assert.match(await raw.line(/^c /), /^c BAD /);
      socket.write('d LOGOUT\r\n');
      await raw.line(/^d OK /);
    } finally {
      socket.destroy();
    }
  });

  it("ends one user's connections on disconnect(user), with BYE, and keeps listening", async function () {
    server.addUser({ user: 'other@example.com', password: 'other' });
    const imap = await connected();
    const other = await connected({ auth: { user: 'other@example.com', pass: 'other' } });
    assert.equal(server.connections, 2);
    const bye = serverSends(/^\* BYE Session ended by the server/);
    const closed = once(imap, 'close');
    assert.equal(await server.disconnect(USER.toUpperCase()), 1);
    await Promise.all([bye, closed]);
    assert.equal(server.connections, 1);
    assert.equal(other.usable, true, "another user's connection stays");
    assert.equal(await server.disconnect(), 1);
    assert.equal(server.connections, 0);
    const again = await connected();
    assert.equal(again.usable, true, 'the listener stays');
  });

  it('closes client connections and the listener on close()', async function () {
    const imap = await connected();
    await imap.mailboxOpen('INBOX');
    assert.equal(server.connections, 1);
    const closed = once(imap, 'close');
    await server.close();
    await closed;
    assert.equal(server.connections, 0);
    await server.close();
    await rejection(connected());
  });
});

describe('fake IMAP command parsing', function () {
  it('reads tags, UID commands, quoted strings, literals, lists and sections', function () {
    const frame = Buffer.from(
      'a1 UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>) "q\\"x" {3}\r\nabc\r\n',
    );
    const parsed = parseCommand(frame);
    assert.equal(parsed.tag, 'a1');
    assert.equal(parsed.name, 'FETCH');
    assert.equal(parsed.uid, true);
    assert.deepEqual(parsed.args, [
      { kind: 'atom', value: '1:*' },
      {
        kind: 'list',
        items: [
          { kind: 'atom', value: 'UID' },
          { kind: 'atom', value: 'BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>' },
        ],
      },
      { kind: 'string', value: Buffer.from('q"x') },
      { kind: 'string', value: Buffer.from('abc') },
    ]);
  });

  it('matches and packs sequence sets, with * standing for the largest number', function () {
    const ranges = parseSequenceSet('7:*,2');
    assert.ok(ranges);
    assert.equal(inSequenceSet(ranges, 5, 5), true);
    assert.equal(inSequenceSet(ranges, 2, 5), true);
    assert.equal(inSequenceSet(ranges, 3, 5), false);
    assert.equal(parseSequenceSet('0:3'), undefined);
    assert.equal(formatSequenceSet([5, 1, 2, 3, 9]), '1:3,5,9');
  });
});

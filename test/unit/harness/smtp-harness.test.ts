import assert from 'node:assert/strict';
import net from 'node:net';
import nodemailer from 'nodemailer';
import type { SMTPTransportOptions } from 'nodemailer/lib/smtp-transport';
import { startSmtpHarness, type SmtpHarness } from '../../../src/harness/smtp-harness.js';

/** The fields nodemailer puts on a failed send. */
interface SendError extends Error {
  code?: string;
  responseCode?: number;
  command?: string;
  originalCode?: string;
}

const FROM = 'sender@example.com';
const TO = ['first@example.com', 'second@example.com'];
// CRLF line endings, lines that need dot-stuffing, 8-bit text: must arrive byte for byte.
const RAW = Buffer.from(
  [
    `From: ${FROM}`,
    `To: ${TO.join(', ')}`,
    'Subject: harness',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '.a line starting with a dot',
    '..two dots',
    'Grüße',
    '',
  ].join('\r\n'),
);

function transport(smtp: SmtpHarness, extra: Partial<SMTPTransportOptions> = {}) {
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: false,
    connectionTimeout: 2_000,
    greetingTimeout: 2_000,
    socketTimeout: 2_000,
    ...extra,
  });
}

function send(smtp: SmtpHarness, extra: Partial<SMTPTransportOptions> = {}, raw: Buffer | string = RAW) {
  const mailer = transport(smtp, extra);
  return mailer.sendMail({ envelope: { from: FROM, to: TO }, raw }).finally(() => mailer.close());
}

async function sendError(smtp: SmtpHarness, extra: Partial<SMTPTransportOptions> = {}, raw?: Buffer | string) {
  try {
    await send(smtp, extra, raw);
  } catch (err) {
    return err as SendError;
  }
  assert.fail('expected the send to fail');
}

describe('SMTP harness', function () {
  let smtp: SmtpHarness;

  afterEach(async function () {
    await smtp?.close();
  });

  describe('delivery', function () {
    beforeEach(async function () {
      smtp = await startSmtpHarness({ host: '127.0.0.1', port: 0 });
    });

    it('records the exact raw bytes and the envelope', async function () {
      const info = await send(smtp);
      assert.deepEqual(info.accepted, TO);
      const [message] = await smtp.waitFor(1, 1_000);
      assert.ok(message);
      assert.deepEqual(message.raw, RAW);
      assert.deepEqual(message.envelope, { from: FROM, to: TO, smtpUtf8: false });
      assert.equal(message.acknowledged, true);
      assert.equal(message.user, undefined);
      assert.ok(message.receivedAt instanceof Date);
      assert.ok(smtp.port > 0);
    });

    it('waitFor resolves when later messages arrive and rejects after its timeout', async function () {
      const waiting = smtp.waitFor(2, 2_000);
      await send(smtp);
      await send(smtp);
      assert.equal((await waiting).length, 2);
      await assert.rejects(smtp.waitFor(3, 50), /2 of 3 messages after 50 ms/);
      const pending = smtp.waitFor(3, 60_000);
      await smtp.close();
      await assert.rejects(pending, /closed while waiting/);
    });
  });

  describe('authentication', function () {
    beforeEach(async function () {
      smtp = await startSmtpHarness({
        users: [{ user: 'agent', password: 'secret' }],
        accessTokens: { 'agent@example.com': 'token-1' },
      });
    });

    for (const method of ['PLAIN', 'LOGIN']) {
      it(`AUTH ${method} accepts the right password and refuses a wrong one`, async function () {
        await send(smtp, { auth: { user: 'agent', pass: 'secret', method } });
        const [message] = await smtp.waitFor(1);
        assert.equal(message?.user, 'agent');

        const err = await sendError(smtp, { auth: { user: 'agent', pass: 'wrong', method } });
        assert.equal(err.code, 'EAUTH');
        assert.equal(err.responseCode, 535);
        assert.equal(err.command, `AUTH ${method}`);
      });
    }

    it('XOAUTH2 accepts the configured token and refuses another with EAUTH 535', async function () {
      await send(smtp, { auth: { type: 'OAuth2', user: 'agent@example.com', accessToken: 'token-1' } });
      const [message] = await smtp.waitFor(1);
      assert.equal(message?.user, 'agent@example.com');

      const err = await sendError(smtp, { auth: { type: 'OAuth2', user: 'agent@example.com', accessToken: 'stale' } });
      assert.equal(err.code, 'EAUTH');
      assert.equal(err.responseCode, 535);
      assert.equal(err.command, 'AUTH XOAUTH2');
    });

    it('requires authentication when users are configured', async function () {
      const err = await sendError(smtp);
      assert.equal(err.code, 'EENVELOPE');
      assert.equal(err.responseCode, 530);
      assert.equal(smtp.messages.length, 0);
    });
  });

  describe('faults', function () {
    beforeEach(async function () {
      smtp = await startSmtpHarness({ size: 100_000 });
    });

    it('421 instead of the greeting → EPROTOCOL 421', async function () {
      smtp.faults.replyAt('connect', 421, 'Too busy');
      const err = await sendError(smtp);
      assert.equal(err.code, 'EPROTOCOL');
      assert.equal(err.responseCode, 421);
      assert.match(err.message, /Too busy/);
    });

    it('451 at MAIL FROM → EENVELOPE 451, only for `times` attempts', async function () {
      smtp.faults.replyAt('mailFrom', 451, undefined, { times: 1 });
      const err = await sendError(smtp);
      assert.equal(err.code, 'EENVELOPE');
      assert.equal(err.responseCode, 451);
      assert.equal(err.command, 'MAIL FROM');
      await send(smtp); // the fault fired once and is gone
      assert.equal(smtp.messages.length, 1);
    });

    it('452 for one recipient → sent to the others, the rejection reported per recipient', async function () {
      smtp.faults.rejectRecipient('FIRST@example.com', 452, 'Mailbox busy');
      const info = await send(smtp);
      assert.deepEqual(info.accepted, ['second@example.com']);
      assert.deepEqual(info.rejected, ['first@example.com']);
      const rejection = info.rejectedErrors?.[0] as SendError | undefined;
      assert.equal(rejection?.code, 'EENVELOPE');
      assert.equal(rejection?.responseCode, 452);
      const [message] = await smtp.waitFor(1);
      assert.deepEqual(message?.envelope.to, ['second@example.com']);
    });

    it('550 for every recipient → EENVELOPE 550', async function () {
      smtp.faults.rejectRecipient('*', 550, 'No such user');
      const err = await sendError(smtp);
      assert.equal(err.code, 'EENVELOPE');
      assert.equal(err.responseCode, 550);
      assert.equal(err.command, 'RCPT TO');
    });

    for (const code of [554, 451]) {
      it(`${code} after the final dot → EMESSAGE ${code}, message not recorded`, async function () {
        smtp.faults.replyAt('data', code);
        const err = await sendError(smtp);
        assert.equal(err.code, 'EMESSAGE');
        assert.equal(err.responseCode, code);
        assert.equal(err.command, 'DATA');
        assert.equal(smtp.messages.length, 0);
      });
    }

    it('connection dropped during DATA → ECONNECTION, message not recorded', async function () {
      smtp.faults.dropAt('midData');
      const err = await sendError(smtp);
      assert.equal(err.code, 'ECONNECTION');
      assert.equal(err.responseCode, undefined);
      assert.equal(smtp.messages.length, 0);
    });

    it('connection dropped while the client still writes a large message → ESOCKET ECONNRESET', async function () {
      smtp = await replaceWith(smtp, { size: 10_000_000 });
      smtp.faults.dropAt('midData', { afterBytes: 16_384 });
      const body = `Subject: big\r\n\r\n${`${'x'.repeat(76)}\r\n`.repeat(40_000)}`; // about 3 MB
      const err = await sendError(smtp, {}, body);
      assert.equal(err.code, 'ESOCKET');
      assert.ok(['ECONNRESET', 'EPIPE'].includes(err.originalCode ?? ''), `originalCode ${err.originalCode}`);
      assert.equal(smtp.messages.length, 0);
    });

    it('connection dropped after the final dot → ECONNECTION, yet the message arrived', async function () {
      smtp.faults.dropAt('afterData');
      const err = await sendError(smtp);
      assert.equal(err.code, 'ECONNECTION');
      const [message] = await smtp.waitFor(1);
      assert.equal(message?.acknowledged, false);
      assert.deepEqual(message?.raw, RAW);
    });

    it('connection dropped before the greeting → ECONNECTION', async function () {
      smtp.faults.dropAt('connect');
      const err = await sendError(smtp);
      assert.equal(err.code, 'ECONNECTION');
    });

    it('message over the size limit → EMESSAGE 552', async function () {
      const err = await sendError(smtp, {}, `Subject: big\r\n\r\n${'y'.repeat(200_000)}\r\n`);
      assert.equal(err.code, 'EMESSAGE');
      assert.equal(err.responseCode, 552);
      assert.equal(smtp.messages.length, 0);
    });

    it('slow responses delay every reply; longer than greetingTimeout → ETIMEDOUT', async function () {
      smtp.faults.slow({ delayMs: 40 });
      const started = Date.now();
      await send(smtp);
      // greeting, EHLO, MAIL, RCPT ×2, DATA, final reply: at least 7 delayed replies
      assert.ok(Date.now() - started >= 7 * 40, `took ${Date.now() - started} ms`);

      smtp.faults.slow({ delayMs: 500 });
      const err = await sendError(smtp, { greetingTimeout: 150 });
      assert.equal(err.code, 'ETIMEDOUT');
    });

    it('trickled responses still deliver', async function () {
      smtp.faults.slow({ trickle: { chunkBytes: 4, intervalMs: 2 } });
      await send(smtp);
      assert.equal((await smtp.waitFor(1)).length, 1);
      smtp.faults.clear();
      await send(smtp);
      assert.equal(smtp.messages.length, 2);
    });
  });

  describe('lifecycle', function () {
    beforeEach(async function () {
      smtp = await startSmtpHarness();
    });

    it('stop() refuses connections (ESOCKET ECONNREFUSED); start() recovers on the same port', async function () {
      const port = smtp.port;
      await smtp.stop();
      assert.equal(smtp.listening, false);
      const err = await sendError(smtp);
      assert.equal(err.code, 'ESOCKET');
      assert.equal(err.originalCode, 'ECONNREFUSED');

      await smtp.start();
      assert.equal(smtp.port, port);
      await send(smtp);
      assert.equal(smtp.messages.length, 1);
    });

    it('close() cuts open sessions and cannot be restarted', async function () {
      const client = net.connect(smtp.port, smtp.host);
      const greeting = await new Promise<string>((resolve) => client.once('data', (data) => resolve(String(data))));
      assert.match(greeting, /^220 /);
      const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      await smtp.close();
      await clientClosed;
      await smtp.close(); // idempotent
      await assert.rejects(smtp.start(), /closed/);
    });
  });
});

async function replaceWith(old: SmtpHarness, options: Parameters<typeof startSmtpHarness>[0]): Promise<SmtpHarness> {
  await old.close();
  return startSmtpHarness(options);
}

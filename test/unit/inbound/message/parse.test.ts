import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { recipientAddresses } from '../../../../src/inbound/message/addresses.js';
import { ParsePool } from '../../../../src/inbound/message/parse-pool.js';
import {
  ParseFailedError,
  type ParseResult,
  type ParsedMessage,
} from '../../../../src/inbound/message/parsed-message.js';
import { crlf, deeplyNested, manyParts, normalMessage, simpleMessage } from './messages.js';

/** The longest the main event loop may stall while the worker deals with poison (issue 3). */
const MAX_LOOP_DELAY_MS = 200;

function parsed(result: ParseResult): ParsedMessage {
  if (!result.ok) assert.fail(`expected a parsed message, got ${result.reason}: ${result.detail}`);
  return result.message;
}

function failure(result: ParseResult): { reason: string; detail: string } {
  assert.equal(result.ok, false, 'expected a parse failure');
  return result as { reason: string; detail: string };
}

/** Runs `work` while sampling the main event loop; returns its result and the worst stall in ms. */
async function withLoopDelay<T>(work: () => Promise<T>): Promise<{ value: T; maxDelayMs: number; elapsedMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const started = performance.now();
  try {
    const value = await work();
    return { value, maxDelayMs: histogram.max / 1e6, elapsedMs: performance.now() - started };
  } finally {
    histogram.disable();
  }
}

/** A header block of about `bytes` bytes of ordinary-looking header lines. */
function hugeHeader(bytes: number): Buffer {
  const lines: string[] = [];
  for (let size = 0, i = 0; size < bytes; i++) {
    const line = `X-Filler-${i}: ${'a'.repeat(70)}`;
    lines.push(line);
    size += line.length + 2;
  }
  return simpleMessage(lines, 'body\r\n');
}

/** A long quoted-printable text message (14 MB by default) that takes mailparser a second or more. */
function slowMessage(lines = 300_000): Buffer {
  return simpleMessage(
    ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'],
    'Hello w=C3=B6rld http://example.com foo@bar.com\r\n'.repeat(lines),
  );
}

/**
 * An HTML body just under the 4 MiB html-to-text bound: turning it into text takes mailparser
 * over half a second here (the text body above no longer does: Mailroom skips textAsHtml).
 */
function slowHtml(): Buffer {
  const unit = '<div><p>Hello <b>w&ouml;rld</b> <a href="http://example.com/x">link</a></p></div>\r\n';
  return simpleMessage(['Content-Type: text/html; charset=utf-8'], unit.repeat(Math.floor(4_100_000 / unit.length)));
}

const brokenCharsets: Array<[string, Buffer]> = [
  ['an unknown charset', simpleMessage(['Content-Type: text/plain; charset=x-unknown'], 'caf\xe9 ok\r\n')],
  [
    'invalid UTF-8 bytes',
    simpleMessage(
      ['Content-Type: text/plain; charset=utf-8'],
      Buffer.from([0x48, 0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0x0d, 0x0a]),
    ),
  ],
  [
    'UTF-8 text labelled ISO-2022-JP, with a broken escape sequence',
    simpleMessage(
      ['Content-Type: text/plain; charset=ISO-2022-JP', 'Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?='],
      Buffer.concat([Buffer.from('日本語のテキスト\r\n'), Buffer.from('\x1b$B\xff\xfe\x1b(B\r\n', 'latin1')]),
    ),
  ],
  [
    'encoded words with bogus charsets and broken base64',
    simpleMessage(
      ['Subject: =?x-bogus?B?SGVsbG8=?= =?utf-8?B?!!not base64!!?=', 'Content-Type: text/plain; charset="'],
      'body\r\n',
    ),
  ],
  [
    'raw 8-bit header bytes and an attachment name in an unknown charset',
    Buffer.from(
      crlf([
        'From: M\xfcller <m@example.org>',
        'Subject: Gr\xfc\xdfe',
        'Content-Type: multipart/mixed; boundary=z',
        '',
        '--z',
        'Content-Type: text/plain; charset=klingon',
        '',
        'text',
        '--z',
        "Content-Disposition: attachment; filename*=x-unknown''%E9t%E9.txt",
        '',
        'data',
        '--z--',
      ]),
      'latin1',
    ),
  ],
];

describe('inbound parse pool', function () {
  this.timeout(60_000);
  const pool = new ParsePool();
  const attachment = randomBytes(5000);

  before(async () => {
    // Workers start on first use (a second or so under tsx); start them before anything is timed.
    await Promise.all([pool.parse(simpleMessage([], 'warm up')), pool.parse(simpleMessage([], 'warm up'))]);
  });

  after(() => pool.close());

  it('parses a normal message with text, html and an attachment into plain JSON', async () => {
    const message = parsed(await pool.parse(normalMessage(attachment)));
    assert.equal(message.messageId, 'order-42@elsewhere.org');
    assert.equal(message.subject, 'Order no. 42—📦 shipped');
    assert.deepEqual(message.from, { address: 'juergen@elsewhere.org', name: 'Jürgen Müller' });
    assert.deepEqual(message.replyTo, [
      { address: 'replies@elsewhere.org', name: 'Replies' },
      { address: 'second@elsewhere.org', name: '' },
    ]);
    assert.deepEqual(message.to, [
      { address: 'support@example.com', name: 'Support' },
      { address: 'sales@bücher.de', name: 'Sales' },
    ]);
    assert.deepEqual(message.cc, [{ address: 'other@elsewhere.org', name: '' }]);
    assert.deepEqual(message.deliveredTo, ['Support@Example.com']);
    assert.deepEqual(message.xOriginalTo, ['support@example.com']);
    assert.equal(message.date, '2025-07-01T08:52:37.000Z');
    assert.equal(message.inReplyTo, 'ack-41@mailroom.example.com');
    assert.deepEqual(message.references, ['first@elsewhere.org', 'ack-41@mailroom.example.com']);
    assert.equal(message.text?.trim(), 'Grüße, where is my order?');
    assert.match(message.html ?? '', /<b>my order<\/b>/);
    assert.deepEqual(message.attachments, [
      {
        index: 0,
        filename: 'invoice.pdf',
        contentType: 'application/pdf',
        size: attachment.length,
        contentId: null,
        checksum: createHash('sha256').update(attachment).digest('hex'),
        inline: false,
      },
    ]);
    assert.deepEqual(message.headers, {
      'return-path': '<customer@elsewhere.org>',
      'content-type': 'multipart/mixed; boundary="outer"',
      'list-id': 'Orders <orders.elsewhere.org>',
    });
    assert.equal(message.headerHash, null, 'a message with a Message-ID needs no header hash');
    assert.deepEqual(JSON.parse(JSON.stringify(message)), message);
    assert.deepEqual(recipientAddresses(message), [
      'support@example.com',
      'sales@xn--bcher-kva.de',
      'other@elsewhere.org',
    ]);
  });

  it('extracts the exact bytes of an attachment, and null for one that does not exist', async () => {
    const raw = normalMessage(attachment);
    const extracted = await pool.extractAttachment(raw, 0);
    assert.ok(extracted);
    assert.equal(extracted.filename, 'invoice.pdf');
    assert.equal(extracted.contentType, 'application/pdf');
    assert.ok(extracted.content.equals(attachment));
    assert.equal(await pool.extractAttachment(raw, 1), null);
    assert.equal(await pool.extractAttachment(raw, -1), null);
    assert.ok(raw.equals(normalMessage(attachment)), 'the caller keeps its buffer intact');
  });

  it('gives a stable header hash that changes with the size, and nulls for missing headers', async () => {
    const a = parsed(await pool.parse(simpleMessage(['Date: not a date'], 'one\r\n')));
    const b = parsed(await pool.parse(simpleMessage(['Date: not a date'], 'one\r\n')));
    const c = parsed(await pool.parse(simpleMessage(['Date: not a date'], 'one two\r\n')));
    assert.equal(a.headerHash, b.headerHash);
    assert.notEqual(a.headerHash, c.headerHash);
    assert.equal(a.messageId, null);
    assert.equal(a.date, null);
    assert.equal(a.inReplyTo, null);
    assert.deepEqual(a.references, []);
    assert.equal(a.html, null);
    const empty = parsed(await pool.parse(Buffer.from('\r\n')));
    assert.equal(empty.subject, '');
    assert.equal(empty.from, null);
  });

  it('reports a date the database cannot store, and an over-long Message-ID, as absent', async () => {
    const longId = `${'x'.repeat(1000)}@example.org`;
    const message = parsed(
      await pool.parse(
        simpleMessage(
          [
            'Date: Mon, 1 Jan 10000 00:00:00 +0000',
            `Message-ID: <${longId}>`,
            `References: <ok@example.org> <${longId}>`,
          ],
          'one\r\n',
        ),
      ),
    );
    assert.equal(message.date, null);
    assert.equal(message.messageId, null);
    assert.match(message.headerHash ?? '', /^[0-9a-f]{64}$/, 'deduplicated by its header hash instead');
    assert.deepEqual(message.references, ['ok@example.org']);
    const longest = parsed(await pool.parse(simpleMessage([`Message-ID: <${'y'.repeat(998)}>`], 'one\r\n')));
    assert.equal(longest.messageId?.length, 998, 'up to 998 bytes is a Message-ID');
  });

  for (const [name, raw] of brokenCharsets) {
    it(`parses a message with ${name}`, async () => {
      const message = parsed(await pool.parse(raw));
      assert.equal(typeof message.text, 'string');
    });
  }

  it('refuses a 2 MiB header as header-too-large, quickly', async () => {
    const raw = hugeHeader(2 * 1024 * 1024);
    const { value, elapsedMs, maxDelayMs } = await withLoopDelay(() => pool.parse(raw));
    assert.equal(failure(value).reason, 'header-too-large');
    assert.ok(elapsedMs < 1000, `took ${elapsedMs} ms`);
    assert.ok(maxDelayMs < MAX_LOOP_DELAY_MS, `event loop stalled ${maxDelayMs} ms`);
  });

  it('refuses MIME nested 5,000 deep without parsing it and without stalling the event loop', async () => {
    const raw = deeplyNested(5000);
    const { value, elapsedMs, maxDelayMs } = await withLoopDelay(() => pool.parse(raw));
    assert.deepEqual(value, { ok: false, reason: 'mime-too-deep', detail: 'MIME nesting deeper than 50 levels' });
    assert.ok(elapsedMs < 500, `took ${elapsedMs} ms`);
    assert.ok(maxDelayMs < MAX_LOOP_DELAY_MS, `event loop stalled ${maxDelayMs} ms`);
  });

  it('refuses more than 1,000 parts', async () => {
    assert.equal(failure(await pool.parse(manyParts(1001))).reason, 'too-many-parts');
  });

  it('refuses a 30 MiB message over the 25 MiB limit, for parsing and for attachments', async () => {
    const raw = simpleMessage([], Buffer.alloc(30 * 1024 * 1024, 'a'));
    assert.equal(failure(await pool.parse(raw)).reason, 'too-large');
    await assert.rejects(pool.extractAttachment(raw, 0), (err: unknown) => {
      assert.ok(err instanceof ParseFailedError);
      assert.equal(err.reason, 'too-large');
      return true;
    });
  });

  it('keeps the event loop free while a batch of poison and normal messages is parsed', async () => {
    const batch = [
      hugeHeader(2 * 1024 * 1024),
      deeplyNested(5000),
      ...brokenCharsets.map(([, raw]) => raw),
      slowMessage(),
      normalMessage(attachment),
    ];
    const { value, maxDelayMs } = await withLoopDelay(() => Promise.all(batch.map((raw) => pool.parse(raw))));
    assert.deepEqual(
      value.map((result) => (result.ok ? 'ok' : result.reason)),
      ['header-too-large', 'mime-too-deep', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    );
    assert.ok(maxDelayMs < MAX_LOOP_DELAY_MS, `event loop stalled ${maxDelayMs} ms`);
  });

  describe('when a worker fails', () => {
    const fragile = new ParsePool({ size: 1, timeoutMs: 200 });
    const starved = new ParsePool({ size: 1, maxHeapMb: 32 });
    after(() => Promise.all([fragile.close(), starved.close()]));

    it('reports parse-timeout, replaces the worker and keeps working', async () => {
      parsed(await fragile.parse(simpleMessage([], 'warm up')));
      // 4 MB of HTML to turn into text: over half a second here, far beyond the 200 ms allowed.
      const result = await fragile.parse(slowHtml());
      assert.deepEqual(result, { ok: false, reason: 'parse-timeout', detail: 'parsing took longer than 200 ms' });
      assert.equal(parsed(await fragile.parse(simpleMessage([], 'next one'))).text?.trim(), 'next one');
    });

    it('retries the messages of a batch that timed out one by one: only the culprit fails', async () => {
      const batching = new ParsePool({
        size: 1,
        timeoutMs: 200,
        inlineMaxBytes: 0,
        batch: { messageMaxBytes: 64 * 1024 * 1024, maxBytes: 64 * 1024 * 1024 },
      });
      try {
        parsed(await batching.parse(simpleMessage([], 'warm up')));
        const results = await Promise.all(
          [simpleMessage([], 'before'), slowHtml(), simpleMessage([], 'after')].map((raw) => batching.parse(raw)),
        );
        assert.deepEqual(
          results.map((r) => (r.ok ? r.message.text?.trim() : r.reason)),
          ['before', 'parse-timeout', 'after'],
        );
      } finally {
        await batching.close();
      }
    });

    it('reports worker-crashed when a worker runs out of memory, and keeps working', async () => {
      const result = await starved.parse(slowMessage());
      assert.equal(failure(result).reason, 'worker-crashed');
      assert.equal(parsed(await starved.parse(simpleMessage([], 'after the crash'))).text?.trim(), 'after the crash');
    });
  });

  it('closes idempotently and rejects work afterwards', async () => {
    const closing = new ParsePool({ size: 1 });
    parsed(await closing.parse(simpleMessage([], 'x')));
    const first = closing.close();
    assert.equal(closing.close(), first);
    await first;
    await assert.rejects(closing.parse(simpleMessage([], 'x')), /ParsePool is closed/);
  });
});

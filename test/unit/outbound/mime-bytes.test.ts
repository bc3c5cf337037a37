import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type MimeNode from 'nodemailer/lib/mime-node';
import { compileMessage, type ComposeInput } from '../../../src/outbound/compose.js';
import { mimeBytes } from '../../../src/outbound/mime-bytes.js';
import { seededRandom } from '../../support/seeded-random.js';

/** What nodemailer's streaming build() makes of a tree: the reference. */
function built(node: MimeNode): Promise<Buffer> {
  return new Promise((resolve, reject) => node.build((err, out) => (err ? reject(err) : resolve(out))));
}

/** Pieces of text that reach every encoder branch: plain words, line ends of each kind, trailing
 * whitespace, long lines, `=` and dots, accented letters, emoji and control characters. */
const PIECES = [
  'Hello',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  ' \n',
  '\t\r\n',
  '.',
  '=',
  '=3D',
  'Grüße aus Köln',
  'naïve café',
  '日本語のテキスト',
  '😀',
  '\u0000',
  '\u007f',
  'x'.repeat(75),
  'y'.repeat(77),
  'word '.repeat(30),
  'é'.repeat(40),
  '<p>Dear customer,</p>',
];

function text(random: () => number, maxPieces: number): string {
  const count = Math.floor(random() * maxPieces);
  let out = '';
  for (let n = 0; n < count; n += 1) out += PIECES[Math.floor(random() * PIECES.length)];
  return out;
}

function bytes(random: () => number, max: number): Buffer {
  const out = Buffer.alloc(Math.floor(random() * max));
  for (let n = 0; n < out.length; n += 1) out[n] = Math.floor(random() * 256);
  return out;
}

const CONTENT_TYPES = ['application/pdf', 'image/png', 'text/plain', 'text/csv; charset=utf-8', 'message/rfc822'];

function input(random: () => number): ComposeInput {
  const has = (p: number): boolean => random() < p;
  return {
    from: { name: has(0.5) ? 'ACME Support' : text(random, 4), address: 'support@acme.example' },
    to: ['customer@example.net'],
    cc: has(0.3) ? ['Zoë <zoe@example.org>'] : [],
    bcc: has(0.2) ? ['audit@acme.example'] : [],
    subject: text(random, 6),
    text: has(0.85) ? text(random, 40) : undefined,
    html: has(0.4) ? `<p>${text(random, 20)}</p>` : undefined,
    attachments: Array.from({ length: has(0.35) ? 1 + Math.floor(random() * 3) : 0 }, (_, n) => ({
      filename: has(0.5) ? `file-${n}.bin` : `${text(random, 3)}.txt`,
      contentType: CONTENT_TYPES[Math.floor(random() * CONTENT_TYPES.length)] ?? 'application/octet-stream',
      content: has(0.5) ? bytes(random, 3_000) : Buffer.from(text(random, 30)),
      ...(has(0.3) && { cid: `part-${n}@acme.example` }),
    })),
    messageId: 'fixed-id@mailroom.example',
    date: new Date(Date.UTC(2026, 10, 26, 9, 30, 0)),
    ...(has(0.3) && { inReplyTo: 'question@example.net', references: ['question@example.net'] }),
    loopValue: 'instance-1',
  };
}

describe('mimeBytes', () => {
  it('gives the same bytes as build() over 400 generated messages', async function () {
    this.timeout(60_000);
    for (let seed = 1; seed <= 400; seed += 1) {
      const message = input(seededRandom(seed));
      const boundary = `b${seed}`;
      const fast = mimeBytes(compileMessage(message, boundary));
      assert.ok(fast, `seed ${seed}: not covered`);
      const reference = await built(compileMessage(message, boundary));
      assert.equal(fast.toString('latin1'), reference.toString('latin1'), `seed ${seed}`);
    }
  });

  it('gives the same bytes for an empty text, a lone CR at the end and a text without a final line break', async () => {
    const base = input(seededRandom(7));
    for (const body of ['', 'ends in CR\r', 'no final line break', 'ü'.repeat(200)]) {
      const message = { ...base, text: body, html: undefined, attachments: [] };
      assert.equal(
        mimeBytes(compileMessage(message, 'b'))?.toString('latin1'),
        (await built(compileMessage(message, 'b'))).toString('latin1'),
        JSON.stringify(body),
      );
    }
  });

  it('leaves a quoted-printable body over one encoder slice (64 KiB) to build()', () => {
    const message = { ...input(seededRandom(5)), text: 'Grüße '.repeat(12_000), html: undefined, attachments: [] };
    assert.equal(mimeBytes(compileMessage(message, 'b')), null);
  });

  it('leaves a tree with a streamed body to build()', () => {
    const node = compileMessage(input(seededRandom(3)), 'b');
    node.setContent(Readable.from(['streamed']));
    assert.equal(mimeBytes(node), null);
  });
});

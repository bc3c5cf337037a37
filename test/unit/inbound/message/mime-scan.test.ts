import assert from 'node:assert/strict';
import { scanMime, type MimeScanLimits } from '../../../../src/inbound/message/mime-scan.js';
import { crlf, deeplyNested, manyParts, normalMessage, simpleMessage } from './messages.js';

const limits: MimeScanLimits = { maxHeaderBytes: 1024 * 1024, maxDepth: 50, maxParts: 1000 };

/** Length of the top-level header block including its blank line. */
function headerLength(raw: Buffer, blankLine = '\r\n\r\n'): number {
  return raw.indexOf(blankLine) + blankLine.length;
}

describe('inbound MIME pre-scan', () => {
  it('measures a normal message: header length, depth and parts', () => {
    const raw = normalMessage(Buffer.from('pdf bytes'));
    const result = scanMime(raw, limits);
    assert.ok(result.ok);
    assert.equal(result.depth, 2);
    assert.equal(result.parts, 4);
    assert.equal(result.headerBytes, headerLength(raw));
  });

  it('accepts the deepest allowed nesting and refuses one level more', () => {
    const deepest = deeplyNested(50);
    assert.deepEqual(scanMime(deepest, limits), { ok: true, headerBytes: headerLength(deepest), depth: 50, parts: 50 });
    const result = scanMime(deeplyNested(51), limits);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'mime-too-deep');
  });

  it('refuses 5,000 levels of nesting in a few milliseconds', () => {
    const raw = deeplyNested(5000);
    const started = performance.now();
    const result = scanMime(raw, limits);
    assert.equal(!result.ok && result.reason, 'mime-too-deep');
    assert.ok(performance.now() - started < 50, `took ${performance.now() - started} ms`);
  });

  it('counts parts and refuses more than the limit', () => {
    assert.equal(scanMime(manyParts(1000), limits).ok, true);
    const result = scanMime(manyParts(1001), limits);
    assert.equal(!result.ok && result.reason, 'too-many-parts');
  });

  it('refuses a header block over the limit, at the top or in a part', () => {
    const big = simpleMessage([`X-Filler: ${'a'.repeat(2000)}`], 'body');
    assert.equal(scanMime(big, { ...limits, maxHeaderBytes: 1000 }).ok, false);
    const noBlankLine = Buffer.from('Subject: x\r\n'.repeat(200));
    assert.equal(scanMime(noBlankLine, { ...limits, maxHeaderBytes: 1000 }).ok, false);
    const partHeader = Buffer.from(
      crlf([
        'Content-Type: multipart/mixed; boundary=x',
        '',
        '--x',
        `X-Filler: ${'a'.repeat(2000)}`,
        '',
        'body',
        '--x--',
      ]),
    );
    const result = scanMime(partHeader, { ...limits, maxHeaderBytes: 1000 });
    assert.equal(!result.ok && result.detail, 'a header at depth 1 exceeds 1000 bytes');
  });

  it('ignores boundary-looking lines that belong to no open multipart', () => {
    const raw = simpleMessage(
      ['Content-Type: text/plain'],
      crlf(['--x', '--x', 'Content-Type: multipart/mixed; boundary=y']),
    );
    assert.deepEqual(scanMime(raw, limits), { ok: true, headerBytes: headerLength(raw), depth: 0, parts: 0 });
  });

  it('closes a multipart at its closing delimiter, and an ancestor delimiter closes unterminated children', () => {
    const raw = Buffer.from(
      crlf([
        'Content-Type: multipart/mixed; boundary=a',
        '',
        '--a',
        'Content-Type: multipart/alternative; boundary=b',
        '',
        '--b',
        '',
        'never closed',
        '--a',
        '',
        'second',
        '--a--',
        '--b',
        'epilogue line that is no delimiter any more',
      ]),
    );
    assert.deepEqual(scanMime(raw, limits), { ok: true, headerBytes: headerLength(raw), depth: 2, parts: 3 });
  });

  it('handles folded, quoted and case-varied Content-Type headers and bare LF line ends', () => {
    const raw = Buffer.from(
      [
        'CONTENT-TYPE: Multipart/Mixed;',
        '\tBoundary="with space"',
        '',
        '--with space',
        '',
        'x',
        '--with space--',
        '',
      ].join('\n'),
    );
    assert.deepEqual(scanMime(raw, limits), { ok: true, headerBytes: headerLength(raw, '\n\n'), depth: 1, parts: 1 });
  });

  it('counts a plain embedded message/rfc822 as a level, an encoded one as a leaf', () => {
    const embedded = (encoding: string): Buffer =>
      Buffer.from(
        crlf([
          'Content-Type: multipart/mixed; boundary=a',
          '',
          '--a',
          'Content-Type: message/rfc822',
          `Content-Transfer-Encoding: ${encoding}`,
          '',
          'Subject: inner',
          'Content-Type: multipart/mixed; boundary=c',
          '',
          '--c',
          '',
          'inner body',
          '--c--',
          '--a--',
        ]),
      );
    const plain = scanMime(embedded('7bit'), limits);
    assert.ok(plain.ok);
    assert.equal(plain.depth, 3);
    const encoded = scanMime(embedded('base64'), limits);
    assert.ok(encoded.ok);
    assert.equal(encoded.depth, 1);
  });
});

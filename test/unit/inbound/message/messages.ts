/** Raw test messages, built byte by byte so each test knows exactly what the parser sees. */

/** Joins lines with CRLF and ends with one. */
export function crlf(lines: string[]): string {
  return lines.join('\r\n') + '\r\n';
}

/** Base64 in 76-character lines, as MIME writes it. */
export function base64Lines(content: Buffer): string {
  return (content.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** multipart/mixed { multipart/alternative { text, html }, attachment } with the usual headers. */
export function normalMessage(attachment: Buffer): Buffer {
  return Buffer.from(
    crlf([
      'Return-Path: <customer@elsewhere.org>',
      'Delivered-To: Support@Example.com',
      'X-Original-To: support@example.com',
      'From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@elsewhere.org>',
      'Reply-To: Replies <replies@elsewhere.org>, second@elsewhere.org',
      'To: Support <support@example.com>, Sales <sales@bücher.de>',
      'Cc: other@elsewhere.org',
      'Subject: =?UTF-8?B?T3JkZXIgbm8uIDQy4oCU8J+TpiBzaGlwcGVk?=',
      'Date: Tue, 01 Jul 2025 10:52:37 +0200',
      'Message-ID: <order-42@elsewhere.org>',
      'In-Reply-To: <ack-41@mailroom.example.com>',
      'References: <first@elsewhere.org>',
      ' <ack-41@mailroom.example.com>',
      'List-Id: Orders <orders.elsewhere.org>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer"',
      '',
      'This is a multi-part message in MIME format.',
      '--outer',
      'Content-Type: multipart/alternative; boundary="inner"',
      '',
      '--inner',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Gr=C3=BC=C3=9Fe, where is my order?',
      '--inner',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Grüße, where is <b>my order</b>?</p>',
      '--inner--',
      '--outer',
      'Content-Type: application/pdf; name="invoice.pdf"',
      'Content-Disposition: attachment; filename="invoice.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      base64Lines(attachment),
      '--outer--',
    ]),
  );
}

/** A simple text message with the given extra header lines and body. */
export function simpleMessage(headers: string[], body: string | Buffer): Buffer {
  const head = crlf(['From: a@example.org', 'To: support@example.com', 'Subject: test', ...headers, '']);
  return Buffer.concat([Buffer.from(head, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

/** multipart/mixed nested `depth` levels deep (each level one part holding the next multipart). */
export function deeplyNested(depth: number): Buffer {
  const lines = ['From: a@example.org', 'To: support@example.com', 'Content-Type: multipart/mixed; boundary="b0"', ''];
  for (let level = 1; level < depth; level++) {
    lines.push(`--b${level - 1}`, `Content-Type: multipart/mixed; boundary="b${level}"`, '');
  }
  lines.push(`--b${depth - 1}`, 'Content-Type: text/plain', '', 'innermost');
  for (let level = depth - 1; level >= 0; level--) lines.push(`--b${level}--`);
  return Buffer.from(crlf(lines));
}

/** One multipart/mixed with `parts` text parts. */
export function manyParts(parts: number): Buffer {
  const lines = ['From: a@example.org', 'Content-Type: multipart/mixed; boundary=sep', ''];
  for (let i = 0; i < parts; i++) lines.push('--sep', 'Content-Type: text/plain', '', `part ${i}`);
  lines.push('--sep--');
  return Buffer.from(crlf(lines));
}

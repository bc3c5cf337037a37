import assert from 'node:assert/strict';
import {
  classifyMessage,
  classifyParsed,
  type ClassifyEnvelope,
  type ClassifyOptions,
} from '../../../../src/inbound/message/classify.js';
import { SELECTED_HEADERS } from '../../../../src/inbound/message/parse.js';
import { HEARTBEAT_HEADER, LOOP_HEADER } from '../../../../src/shared/mail-headers.js';

const options: ClassifyOptions = {
  ownMessageIdDomain: 'mailroom.example.com',
  loopHeaderName: LOOP_HEADER,
  ownInstanceLoopValue: 'instance-1',
};

interface Case {
  name: string;
  headers?: Record<string, string>;
  envelope?: ClassifyEnvelope;
  expect: { autoReply?: boolean; bounce?: boolean; loop?: boolean; reasons: string[] };
}

const cases: Case[] = [
  { name: 'an ordinary message', headers: { 'content-type': 'text/plain' }, expect: { reasons: [] } },
  { name: 'Auto-Submitted: no', headers: { 'auto-submitted': 'no' }, expect: { reasons: [] } },
  { name: 'Auto-Submitted: NO (case)', headers: { 'auto-submitted': ' NO ' }, expect: { reasons: [] } },
  {
    name: 'Auto-Submitted: auto-replied',
    headers: { 'auto-submitted': 'auto-replied' },
    expect: { autoReply: true, reasons: ['auto-submitted:auto-replied'] },
  },
  {
    name: 'Auto-Submitted: auto-generated with a parameter',
    headers: { 'Auto-Submitted': 'Auto-Generated; owner-email="x@y"' },
    expect: { autoReply: true, reasons: ['auto-submitted:auto-generated'] },
  },
  { name: 'X-Autoreply', headers: { 'x-autoreply': 'yes' }, expect: { autoReply: true, reasons: ['x-autoreply'] } },
  { name: 'X-Autorespond', headers: { 'X-Autorespond': 'x' }, expect: { autoReply: true, reasons: ['x-autorespond'] } },
  {
    name: 'X-Auto-Response-Suppress',
    headers: { 'x-auto-response-suppress': 'All' },
    expect: { autoReply: true, reasons: ['x-auto-response-suppress'] },
  },
  ...['bulk', 'junk', 'list'].map((value) => ({
    name: `Precedence: ${value}`,
    headers: { precedence: value.toUpperCase() },
    expect: { autoReply: true, reasons: [`precedence:${value}`] },
  })),
  { name: 'Precedence: first-class', headers: { precedence: 'first-class' }, expect: { reasons: [] } },
  {
    name: 'Return-Path: <>',
    headers: { 'return-path': '<>' },
    expect: { bounce: true, reasons: ['null-sender'] },
  },
  { name: 'empty Return-Path', headers: { 'return-path': '' }, expect: { bounce: true, reasons: ['null-sender'] } },
  { name: 'Return-Path with an address', headers: { 'return-path': '<a@example.com>' }, expect: { reasons: [] } },
  {
    name: 'null envelope sender',
    envelope: { sender: '' },
    expect: { bounce: true, reasons: ['null-envelope-sender'] },
  },
  { name: 'unknown envelope sender', envelope: { sender: null }, expect: { reasons: [] } },
  {
    name: 'multipart/report',
    headers: { 'content-type': 'Multipart/Report; report-type=delivery-status; boundary="x"' },
    expect: { bounce: true, reasons: ['multipart-report'] },
  },
  {
    name: 'From MAILER-DAEMON',
    envelope: { from: 'MAILER-DAEMON@mx.example.net' },
    expect: { bounce: true, reasons: ['from:mailer-daemon'] },
  },
  {
    name: 'From postmaster',
    envelope: { from: 'Postmaster@example.net' },
    expect: { bounce: true, reasons: ['from:postmaster'] },
  },
  { name: 'From mailer-daemon-fan', envelope: { from: 'mailer-daemon-fan@example.net' }, expect: { reasons: [] } },
  {
    name: 'our loop header with our instance value',
    headers: { 'x-mailroom-loop': 'instance-1' },
    expect: { loop: true, reasons: ['loop-header', 'loop-header:own-instance'] },
  },
  {
    name: 'our loop header from another instance',
    headers: { 'X-Mailroom-Loop': 'instance-2' },
    expect: { loop: true, reasons: ['loop-header'] },
  },
  {
    name: 'a reply to our mail carrying our loop header',
    headers: { 'x-mailroom-loop': 'instance-1' },
    envelope: { inReplyTo: 'abc@MailRoom.example.com' },
    expect: { loop: true, reasons: ['loop-header', 'loop-header:own-instance', 'in-reply-to:own-domain'] },
  },
  {
    name: 'an ordinary reply to our mail (In-Reply-To on our domain, no loop header)',
    envelope: { inReplyTo: 'abc@mailroom.example.com', messageId: 'reply@customer.example' },
    expect: { reasons: [] },
  },
  {
    name: 'our own Message-ID came back',
    envelope: { messageId: 'abc@mailroom.example.com' },
    expect: { loop: true, reasons: ['message-id:own-domain'] },
  },
  {
    name: "our own Message-ID on the sending address's domain came back",
    envelope: { messageId: '<mailroom.3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d@support.example.org>' },
    expect: { loop: true, reasons: ['message-id:own'] },
  },
  {
    name: 'a person on the same domain (any other Message-ID) is no loop',
    envelope: { messageId: '3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d@support.example.org' },
    expect: { reasons: [] },
  },
  {
    name: 'a Message-ID on a sub-domain of ours',
    envelope: { messageId: 'abc@x.mailroom.example.com' },
    expect: { reasons: [] },
  },
  {
    name: 'an out-of-office bounce of our own message, everything at once',
    headers: {
      'auto-submitted': 'auto-replied',
      precedence: 'junk',
      'return-path': '<>',
      'content-type': 'multipart/report; report-type=delivery-status',
      'x-mailroom-loop': 'instance-1',
    },
    envelope: { from: 'mailer-daemon@example.net', messageId: 'abc@mailroom.example.com' },
    expect: {
      autoReply: true,
      bounce: true,
      loop: true,
      reasons: [
        'auto-submitted:auto-replied',
        'precedence:junk',
        'null-sender',
        'multipart-report',
        'from:mailer-daemon',
        'loop-header',
        'loop-header:own-instance',
        'message-id:own-domain',
      ],
    },
  },
];

describe('inbound classification', () => {
  for (const testCase of cases) {
    it(testCase.name, () => {
      const result = classifyMessage(testCase.headers ?? {}, testCase.envelope ?? {}, options);
      assert.deepEqual(result, {
        autoReply: testCase.expect.autoReply ?? false,
        bounce: testCase.expect.bounce ?? false,
        loop: testCase.expect.loop ?? false,
        reasons: testCase.expect.reasons,
      });
    });
  }

  it('honours a different loop header name', () => {
    const custom = { ...options, loopHeaderName: 'X-Other-Loop' };
    assert.equal(classifyMessage({ 'x-other-loop': '1' }, {}, custom).loop, true);
    assert.equal(classifyMessage({ 'x-mailroom-loop': '1' }, {}, custom).loop, false);
  });

  it('the parser keeps the headers Mailroom writes (loop, heartbeat) among the selected headers', () => {
    assert.equal(LOOP_HEADER, 'X-Mailroom-Loop');
    assert.equal(HEARTBEAT_HEADER, 'X-Mailroom-Heartbeat');
    for (const name of [LOOP_HEADER, HEARTBEAT_HEADER]) {
      assert.ok((SELECTED_HEADERS as readonly string[]).includes(name.toLowerCase()), name);
    }
  });

  it('classifies a parsed message through classifyParsed', () => {
    const result = classifyParsed(
      {
        headers: { 'auto-submitted': 'auto-replied' },
        from: { address: 'postmaster@example.net', name: '' },
        messageId: 'x@customer.example',
        inReplyTo: null,
      },
      options,
      '',
    );
    assert.deepEqual(result.reasons, ['auto-submitted:auto-replied', 'null-envelope-sender', 'from:postmaster']);
  });
});

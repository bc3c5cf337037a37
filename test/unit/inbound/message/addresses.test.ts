import assert from 'node:assert/strict';
import { normalizeAddress, recipientAddresses } from '../../../../src/inbound/message/addresses.js';

describe('inbound addresses', () => {
  describe('normalizeAddress', () => {
    const cases: Array<[string, string | null]> = [
      ['support@example.com', 'support@example.com'],
      ['  Support@EXAMPLE.com  ', 'support@example.com'],
      ['<Support@Example.COM>', 'support@example.com'],
      ['Support Team <support@example.com>', 'support@example.com'],
      ['"Doe, John" <John.Doe@Example.com>', 'john.doe@example.com'],
      ['"Tricky <x@evil.com>" <real@example.com>', 'real@example.com'],
      ['support@example.com (Support desk)', 'support@example.com'],
      ['support@example.com.', 'support@example.com'],
      ['<@relay.example.net:user@example.com>', 'user@example.com'],
      ['info@Bücher.de', 'info@xn--bcher-kva.de'],
      ['Café <c@CAFÉ.example>', 'c@xn--caf-dma.example'],
      ['c@xn--caf-dma.example', 'c@xn--caf-dma.example'],
      ['"john doe"@example.com', '"john doe"@example.com'],
      ['user+tag@example.com', 'user+tag@example.com'],
      ['postmaster@[192.0.2.1]', 'postmaster@[192.0.2.1]'],
      ['', null],
      ['   ', null],
      ['not an address', null],
      ['MAILER-DAEMON', null],
      ['@example.com', null],
      ['user@', null],
      ['user@@example.com', null],
      ['user@exa mple.com', null],
      ['user@example..com', null],
      ['user@-example.com', null],
      ['.user@example.com', null],
      ['us..er@example.com', null],
      ['a@b.com, c@d.com', null],
      ['Name <a@b.com', null],
      ['<a@b.com> trailing', null],
      ['user@ex\uFFFDmple.com', null],
      ['x'.repeat(1000) + '@example.com', null],
    ];
    for (const [input, expected] of cases) {
      it(`${JSON.stringify(input.slice(0, 60))} -> ${String(expected)}`, () => {
        assert.equal(normalizeAddress(input), expected);
      });
    }

    it('maps every spelling of an IDN domain to the same key', () => {
      const spellings = ['team@BÜCHER.de', 'team@bücher.de', 'team@xn--bcher-kva.de', 'Team <TEAM@Bücher.DE.>'];
      assert.deepEqual(new Set(spellings.map(normalizeAddress)), new Set(['team@xn--bcher-kva.de']));
    });
  });

  describe('recipientAddresses', () => {
    it('collects To, Cc, Delivered-To, X-Original-To and envelope recipients, normalized, each once', () => {
      const recipients = recipientAddresses(
        {
          to: [{ address: 'Support@Example.com' }, { address: 'sales@bücher.de' }],
          cc: [{ address: 'support@example.com' }],
          deliveredTo: ['<Billing@Example.com>', 'garbage value'],
          xOriginalTo: ['orig@example.com, second@example.com'],
        },
        ['Envelope@Example.com', 'sales@xn--bcher-kva.de'],
      );
      assert.deepEqual(recipients, [
        'support@example.com',
        'sales@xn--bcher-kva.de',
        'billing@example.com',
        'orig@example.com',
        'second@example.com',
        'envelope@example.com',
      ]);
    });

    it('returns an empty list when no recipient parses', () => {
      assert.deepEqual(
        recipientAddresses({ to: [{ address: 'nobody' }], cc: [], deliveredTo: [], xOriginalTo: [] }),
        [],
      );
    });
  });
});

import assert from 'node:assert/strict';
import { routeMessage, type RoutableDestination } from '../../../../src/inbound/message/route.js';

const destinations: RoutableDestination[] = [
  { id: 'd-support', addressKey: 'support@example.com', monitored: true },
  { id: 'd-sales', addressKey: 'sales@example.com', monitored: true },
  { id: 'd-paused', addressKey: 'paused@example.com', monitored: false },
  { id: 'd-idn', addressKey: 'info@xn--bcher-kva.de', monitored: true },
];

describe('inbound routing', () => {
  it('routes to the one matching monitored destination', () => {
    assert.deepEqual(routeMessage(['support@example.com'], destinations, null), {
      destinationIds: ['d-support'],
      unrouted: false,
      matched: [{ destinationId: 'd-support', address: 'support@example.com' }],
    });
  });

  it('routes a message for several destinations to each, in destination order, once', () => {
    const decision = routeMessage(
      ['sales@example.com', 'customer@elsewhere.org', 'support@example.com', 'SALES@Example.com'],
      destinations,
      'd-default',
    );
    assert.deepEqual(decision, {
      destinationIds: ['d-support', 'd-sales'],
      unrouted: false,
      matched: [
        { destinationId: 'd-support', address: 'support@example.com' },
        { destinationId: 'd-sales', address: 'sales@example.com' },
      ],
    });
  });

  it('lists a destination once even when the list repeats it', () => {
    const repeated = [...destinations, { id: 'd-support', addressKey: 'SUPPORT@example.com', monitored: true }];
    assert.deepEqual(routeMessage(['support@example.com'], repeated, null).destinationIds, ['d-support']);
  });

  it('compares normalized addresses: case, display names and IDN spellings match', () => {
    assert.deepEqual(routeMessage(['Support Desk <SUPPORT@EXAMPLE.COM>'], destinations, null).destinationIds, [
      'd-support',
    ]);
    assert.deepEqual(routeMessage(['info@BÜCHER.de'], destinations, null).destinationIds, ['d-idn']);
  });

  it('ignores unmonitored destinations (falling back to the default)', () => {
    assert.deepEqual(routeMessage(['paused@example.com'], destinations, 'd-default'), {
      destinationIds: ['d-default'],
      unrouted: false,
      matched: [],
    });
    assert.deepEqual(routeMessage(['paused@example.com'], destinations, null), {
      destinationIds: [],
      unrouted: true,
      matched: [],
    });
  });

  it('never matches by substring', () => {
    const lookalikes = [
      'support@example.com.evil',
      'xsupport@example.com',
      'support@sub.example.com',
      'support@example.co',
      'support@example.com.',
    ];
    for (const recipient of lookalikes.slice(0, 4)) {
      assert.deepEqual(
        routeMessage([recipient], destinations, null),
        { destinationIds: [], unrouted: true, matched: [] },
        recipient,
      );
    }
    // A trailing root dot is the same domain, not a look-alike.
    assert.deepEqual(routeMessage([lookalikes[4] as string], destinations, null).destinationIds, ['d-support']);
  });

  it('sends a message matching nothing to the default destination, else marks it unrouted', () => {
    assert.deepEqual(routeMessage(['someone@else.org'], destinations, 'd-default'), {
      destinationIds: ['d-default'],
      unrouted: false,
      matched: [],
    });
    assert.deepEqual(routeMessage([], destinations, null), { destinationIds: [], unrouted: true, matched: [] });
    assert.deepEqual(routeMessage(['garbage', ''], [], null), { destinationIds: [], unrouted: true, matched: [] });
  });
});

import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  addRouteTarget,
  forEachBackend,
  openApiHarness,
  routeAndSignal,
  type ApiHarness,
} from '../support/api-harness.js';
import { eventually } from '../support/mail.js';
import type { RouteTarget } from '../support/routed-messages.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * What the outside review found of waits: a token revoked while its stream or long poll is open
 * gets nothing routed after the revocation; cursors beyond the integers the feed has are refused
 * with 400 naming the field; a tenant's tokens together hold a limited number of waits.
 */
forEachBackend('agent waits after a revocation, cursors out of range, tenant limit', (kind) => {
  let h: ApiHarness;
  let target: RouteTarget;
  let base: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    target = await addRouteTarget(h, 'Revoked');
    base = `/api/v1/tenants/${target.tenantId}/destinations/${target.destinationId}`;
  });
  afterEach(async () => {
    await h.close();
  });

  const route = (n: number): Promise<number[]> => routeAndSignal(h, target, n);

  async function tenantToken(): Promise<{ token: string; id: string }> {
    const issued = await h.call<Obj>('POST', `/api/v1/tenants/${target.tenantId}/tokens`, {
      name: `agent ${Math.random()}`,
    });
    assert.equal(issued.status, 201, issued.raw);
    return { token: issued.body.token as string, id: issued.body.id as string };
  }

  it('gives a long poll of a token revoked while it waited nothing routed after the revocation', async () => {
    const { token, id } = await tenantToken();
    const poll = h.call<Obj>('GET', `${base}/messages?after=0&wait=20`, undefined, token);
    await eventually(async () => (h.inbound.signals.waiting === 1 ? true : undefined));
    const revoked = await h.call<Obj>('DELETE', `/api/v1/tenants/${target.tenantId}/tokens/${id}`);
    assert.equal(revoked.status, 204, revoked.raw);
    await route(1);
    const answer = await poll;
    assert.equal(answer.status, 401, answer.raw);
    assert.equal(answer.body.error.code, 'UNAUTHORIZED');
    assert.doesNotMatch(answer.raw, /Message 1/);
  });

  it('answers 401 to a long poll of a token revoked while it waited, also when nothing arrived', async () => {
    const { token, id } = await tenantToken();
    const poll = h.call<Obj>('GET', `${base}/messages?after=0&wait=2`, undefined, token);
    await eventually(async () => (h.inbound.signals.waiting === 1 ? true : undefined));
    const revoked = await h.call<Obj>('DELETE', `/api/v1/tenants/${target.tenantId}/tokens/${id}`);
    assert.equal(revoked.status, 204, revoked.raw);
    const answer = await poll;
    assert.equal(answer.status, 401, answer.raw);
    assert.equal(answer.body.error.code, 'UNAUTHORIZED');
  });

  it('ends the event stream of a token revoked while it was open, sending nothing routed after', async () => {
    const { token, id } = await tenantToken();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (h.app.server.address() as AddressInfo).port;
    let text = '';
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        `http://127.0.0.1:${port}${base}/events`,
        { headers: { authorization: `Bearer ${token}` } },
        resolve,
      );
      req.once('error', reject);
      req.end();
    });
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    const ended = new Promise<void>((resolve) => res.once('end', resolve));
    assert.equal(res.statusCode, 200);
    await route(1);
    await eventually(async () => (text.includes('event: message.routed') ? true : undefined));
    await h.call<Obj>('DELETE', `/api/v1/tenants/${target.tenantId}/tokens/${id}`);
    await route(1);
    await ended;
    assert.equal(text.match(/event: message\.routed/g)?.length, 1, 'nothing routed after the revocation was sent');
    assert.match(text, /event: error/);
  });

  it('refuses cursors beyond the integers a feed has, naming the field', async () => {
    for (const url of [
      `${base}/messages?after=99999999999999999999`,
      `${base}/messages?order=desc&before=99999999999999999999`,
      `${base}/events?after=99999999999999999999`,
    ]) {
      const res = await h.call<Obj>('GET', url);
      assert.equal(res.status, 400, `${url}: ${res.raw}`);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.match(res.body.error.field, /after|before/);
    }
  });

  it('limits the waits of all of a tenant’s tokens together, not only of each token', async () => {
    // The harness's limits: 200 a token (the default), 1,000 a tenant; six tokens of 200 each.
    const tokens = await Promise.all(Array.from({ length: 6 }, () => tenantToken()));
    const polls: Array<Promise<unknown>> = [];
    for (const { token } of tokens.slice(0, 5)) {
      for (let i = 0; i < 200; i += 1) polls.push(h.call('GET', `${base}/messages?after=0&wait=30`, undefined, token));
    }
    await eventually(async () => (h.inbound.signals.waiting === 1000 ? true : undefined), 30_000);
    const refused = await h.call<Obj>('GET', `${base}/messages?after=0&wait=30`, undefined, tokens[5]?.token);
    assert.equal(refused.status, 429, refused.raw);
    assert.match(refused.body.error.message, /tenant/);
    h.inbound.feed.endWaits();
    await Promise.all(polls);
  });
});
